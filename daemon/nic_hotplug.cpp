#include "daemon/nic_hotplug.hpp"

#include <fmt/core.h>

#include "daemon/nic_host.hpp"
#include "daemon/nic_setup.hpp"
#include "network/network.hpp"

namespace bulkhead::daemon {

namespace {

struct ContainerNetns {
  net::Netns ns;
  net::Netlink nl;
};

Result<ContainerNetns> container_netns(const runtime::ProcessId &init) {
  // Checked against init's start time, so a recycled pid never leads into another netns.
  auto pidfd = runtime::open_pidfd(init);
  if (!pidfd)
    return fail(fmt::format("the container's init {}: {}", init.pid, pidfd.error().message),
                pidfd.error().code);
  auto ns = BH_TRY(net::Netns::of_pidfd(pidfd->get()));
  auto nl = BH_TRY(net::Netlink::open(ns));
  return ContainerNetns{std::move(ns), std::move(nl)};
}

} // namespace

Result<size_t> free_nic_index(const std::vector<NicConfig> &nics, const runtime::ProcessId &init) {
  std::vector<std::string> taken;
  for (const auto &n : nics)
    taken.push_back(n.name);
  if (init.pid) {
    auto ct = BH_TRY(container_netns(init));
    for (const auto &l : BH_TRY(net::list_links(ct.nl)))
      taken.push_back(l.name);
  }
  for (size_t i = 0;; ++i)
    if (std::find(taken.begin(), taken.end(), "eth" + std::to_string(i)) == taken.end())
      return i;
}

Status hotplug_nic(Networks &networks, NicConfig &nic, bool first, const runtime::ProcessId &init) {
  auto ct = BH_TRY(container_netns(init));
  auto host = BH_TRY(net::Netlink::open());
  std::vector<net::LinkGuard> guards;
  if (auto r = setup_nic(networks, host, ct.nl, ct.ns, nic, first, guards); !r) {
    guards.clear(); // deletes the veth: both ends, their addresses, routes and qdiscs
    // What outlives the veth: an IFB made for an ingress cap, a routed NIC's proxy NDP entry.
    teardown_nics_host(networks, {nic});
    return fail(fmt::format("{} on network {}: {}", nic.name, nic.network, r.error().message),
                r.error().code);
  }
  for (auto &g : guards)
    g.release();
  return {};
}

Status unplug_nic(Networks &networks, const NicConfig &nic) {
  teardown_nics_host(networks, {nic});
  auto host = BH_TRY(net::Netlink::open());
  if (BH_TRY(net::find_link(host, nic.host_name)))
    return fail(fmt::format("{}: its host end {} could not be deleted", nic.name, nic.host_name), EBUSY);
  return {};
}

} // namespace bulkhead::daemon
