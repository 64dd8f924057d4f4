// Hot-plugging NICs into a running container (`bulkheadctl net attach/detach`, docs/network.md
// "Attaching and detaching NICs"): the same veth, addresses, routes, proxy entries and caps a
// start makes (daemon/nic_setup.hpp), for one NIC, in the netns of the container's init, from
// the daemon's own threads (a netlink socket opened in that netns; nothing forks).
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "daemon/networks.hpp"
#include "runtime/process_id.hpp"

namespace bulkhead::daemon {

// The lowest N where ethN is neither a NIC of the record nor (with init given) a link in the
// container's netns (a link the container made itself is not taken over).
Result<size_t> free_nic_index(const std::vector<NicConfig> &nics, const runtime::ProcessId &init);

// Makes nic in the running container whose init is `init`; `first`: it carries the default
// routes (the container had no NIC). On failure everything it made is gone again (veth, routes,
// proxy entries, qdiscs, IFB); the addresses stay allocated (the caller's).
Status hotplug_nic(Networks &networks, NicConfig &nic, bool first, const runtime::ProcessId &init);

// Removes a running container's NIC: its veth (both ends, with their routes and qdiscs), IFB and
// proxy NDP entries. An error when the host end is still there afterwards.
Status unplug_nic(Networks &networks, const NicConfig &nic);

} // namespace bulkhead::daemon
