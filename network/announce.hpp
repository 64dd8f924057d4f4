// Telling a link's neighbours where an address lives now: a gratuitous ARP (IPv4) or an unsolicited
// Neighbor Advertisement with the Override flag (IPv6, RFC 4861 section 7.2.6).
//
// Why: when an address appears behind another MAC (a container migrated or failed over to another
// host, or its host rebooted with a new NIC), neighbours keep sending to the old MAC until their
// cache entry ages out: on Linux up to ~45 s of REACHABLE plus ~8 s of delay and probes. An
// announcement updates their existing entries at once (Linux takes a gratuitous ARP even for a
// REACHABLE entry; an NA with Override replaces the link-layer address of any valid entry).
// Neither creates an entry a neighbour does not have, so nothing is learnt that was not asked.
#pragma once

#include <string_view>

#include "bulkhead/result.hpp"
#include "network/ip.hpp"

namespace bulkhead::net {

// Announces that `addr` is at `mac` ("aa:bb:cc:dd:ee:ff") on link `ifindex` of the calling thread's
// network namespace (run it through run_in() for another one). Needs CAP_NET_RAW there.
Status announce_address(int ifindex, std::string_view mac, const IpAddress &addr);

} // namespace bulkhead::net
