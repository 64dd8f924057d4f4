// Bridged NICs of hosted containers (docs/network.md "Daemon integration"): addresses from the
// networks' IPAM at create, a veth pair per NIC at start (host end on the network's bridge,
// container end eth0, eth1, ... born in init's netns), resolv.conf and hosts in the upper layer.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "daemon/networks.hpp"
#include "network/network.hpp"

namespace bulkhead::daemon {

// The create request's "nets": [{"network", "ipv4"?: "198.18.77.10", "ipv6"?: "fd42:77::10"}].
// Explicit addresses are claimed, the others allocated (lowest free); on failure nothing stays
// allocated. Errors name the network and address.
// The host end of a container's NIC number index: "bh-" + name + "-" + index, or a shortened name
// with a hash of the full one when that exceeds 15 characters.
std::string host_end_name(const std::string &container, size_t index);
// One NIC of that request, named eth<index> (host end and MAC derived from container + index);
// on failure nothing stays allocated. Also `bulkheadctl net attach` (daemon_nic_hotplug.cpp).
Result<NicConfig> allocate_nic(Networks &networks, const std::string &container, const nlohmann::json &spec,
                               size_t index);
Result<std::vector<NicConfig>> allocate_nics(Networks &networks, const std::string &container,
                                             const nlohmann::json &request);
// Gives the NICs' addresses back (destroy, or a create that failed later).
void release_nics(Networks &networks, const std::string &container, const std::vector<NicConfig> &nics);
// In the netns of init_pid (blocked between create and start): the veth pairs, addresses, default
// routes via the bridges' addresses, lo up; each NIC's mac is set to its container end's address.
// On failure the veths made so far are deleted.
Status setup_nics(Networks &networks, std::vector<NicConfig> &nics, pid_t init_pid);
// One NIC of setup_nics (or a hot-plugged one) in the netns ct/ct_ns: its veth's guard is
// appended to guards (the caller releases them when everything worked); `first` adds the default
// routes through it.
Status setup_nic(Networks &networks, net::Netlink &host, net::Netlink &ct, const net::Netns &ct_ns,
                 NicConfig &nic, bool first, std::vector<net::LinkGuard> &guards);
// /etc/resolv.conf (nameserver: the first NIC's network's bridge address) and /etc/hosts into the
// container's upper layer, resolved inside it (a symlink cannot lead the write out). owner: the
// host uid/gid of the container's root (an unprivileged container's range base), who must own
// what is written so that root inside may change it; 0 for a privileged container.
Status write_network_files(Networks &networks, const std::string &upper, const std::string &hostname,
                           const std::vector<NicConfig> &nics, uid_t owner_uid = 0, gid_t owner_gid = 0);
// "nics" of the Container object.
nlohmann::json nics_json(const std::vector<NicConfig> &nics);

} // namespace bulkhead::daemon
