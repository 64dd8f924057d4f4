// NAT for a managed network (`network create --nat [--uplink IFACE]`): one nf_tables table per
// network, `table ip bulkhead_NAME`, owned by bulkheadd, built through libnftables
// (network/nftables.hpp). Applying it deletes and re-creates the table in one transaction, so a
// restarted daemon re-creates it idempotently: packets see either the old or the new ruleset, and
// conntrack entries (the established masqueraded flows) are untouched.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "daemon/networks.hpp"

namespace bulkhead::daemon {

// "bulkhead_" + the network name with '-' as '_' (nft identifiers take no '-'; network names
// take no '_', so the mapping is one-to-one).
std::string nat_table_name(const std::string &network);

// Checks an uplink interface name: 1 to 15 of [A-Za-z0-9._-] (it goes into nft's language).
Status check_uplink_name(const std::string &uplink);

// The table's text for a NATed network (requires n.nat and n.ipv4): the masquerade, and with
// forwards a prerouting chain (DNAT of what arrives for a host address, through the uplink or,
// without one, through any interface but the bridge) and an output chain (the host's own
// connections to its addresses, loopback excepted).
std::string nat_ruleset(const NetworkRecord &n, const std::vector<DnatRule> &forwards = {});

// Enables IPv4 forwarding in the daemon's netns and (re)creates the network's table atomically
// with the given forwards.
Status apply_nat(const NetworkRecord &n, const std::vector<DnatRule> &forwards = {});
// Deletes the network's table if it exists. Forwarding is left on: other networks or the host
// may rely on it.
Status remove_nat(const std::string &network);

} // namespace bulkhead::daemon
