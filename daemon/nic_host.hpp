// The host side of containers' NICs beyond the bridged basics (docs/network.md): routed NICs,
// bandwidth caps (tc on the host end), stable MACs, teardown of what outlives a container's netns
// (proxy NDP entries, IFBs) and re-adoption of a running container's NICs after a daemon restart.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "daemon/networks.hpp"
#include "network/network.hpp"

namespace bulkhead::daemon {

// A locally administered unicast MAC derived from the container's name and the NIC's index, so
// a NIC keeps its MAC across restarts (and neighbours' ARP caches stay right).
std::string stable_mac(const std::string &container, size_t index);

// A cap from the API: a tc rate string, or null / "none" (no cap). The canonical text ("20mbit")
// or "" for none; EINVAL naming what and the text when it does not parse.
Result<std::string> parse_cap(const nlohmann::json &value, const std::string &what);

// A routed NIC in init's netns: veth (host end with the link-local gateways), the container's
// /32 and /128, default routes via the gateways (first NIC), host routes, proxy NDP entries.
// The guard of the veth is appended to guards (released by the caller when everything worked).
Status setup_routed_nic(net::Netlink &host, net::Netlink &ct, const net::Netns &ct_ns, NicConfig &nic,
                        const NetworkRecord &net, bool first, std::vector<net::LinkGuard> &guards);

// Makes the host end's qdiscs match nic.ingress / nic.egress: set when missing or different,
// removed when the NIC has no cap; an unchanged cap is not touched (traffic keeps flowing).
Status apply_nic_caps(net::Netlink &host, const NicConfig &nic);

// After a container's netns is gone (or before its NICs are made again): its host ends, their
// IFBs and routed NICs' proxy NDP entries on the uplink. Absent objects are fine; errors are
// reported on stderr, never fatal.
void teardown_nics_host(Networks &networks, const std::vector<NicConfig> &nics);

// A daemon restart: for a running container whose init is init_pid, re-checks each NIC (host
// end present, bridge port, routes, proxy entries, caps) and re-adds what is missing, never
// removing or re-creating anything that is there.
Status readopt_nics(Networks &networks, std::vector<NicConfig> &nics, pid_t init_pid);

// "set --net-limit": [{"nic":"eth0"?, "ingress"?: RATE|null|"none", "egress"?: ...}] into nics
// (applied on the host ends at once when running). Nothing changes when any entry is invalid.
Status set_nic_limits(std::vector<NicConfig> &nics, const nlohmann::json &request, bool running);

} // namespace bulkhead::daemon
