// The Daemon's side of `bulkheadctl net attach/detach` (docs/network.md "Attaching and detaching
// NICs"): a NIC added to or removed from a container's record, hot-plugged when it runs. The
// record and the kernel change together: any failure leaves both as they were.
#include <algorithm>

#include <fmt/core.h>

#include "daemon/daemon.hpp"
#include "daemon/nic_host.hpp"
#include "daemon/nic_hotplug.hpp"
#include "daemon/nic_setup.hpp"
#include "network/network.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

// An attach takes the lowest free ethN: a container would need this many NICs to go past it.
constexpr size_t kMaxStrayIndex = 64;

// A NIC can be hot-plugged while the container's netns is there and its lifecycle is settled;
// a stopped container only changes its record. Stopping/starting: refused (EBUSY).
Result<bool> plug_live(const std::string &name, const RuntimeStatus &s, bool watched) {
  if (s.state == "stopping" || (s.state == "starting" && watched))
    return fail(fmt::format("container \"{}\" is {}; try again once it is running or stopped", name, s.state),
                EBUSY);
  return watched && s.init_pid && (s.state == "running" || s.state == "frozen");
}

} // namespace

Result<json> Daemon::attach_nic(const std::string &name, const json &request) {
  if (!request.is_object() || !request.contains("network") || !request["network"].is_string())
    return fail("a NIC is {\"network\", \"ipv4\"?, \"ipv6\"?, \"ingress\"?, \"egress\"?}", EINVAL);
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  auto &s = e->rec.status;
  bool live = BH_TRY(plug_live(name, s, e->watch_fd.valid()));
  runtime::ProcessId init{live ? s.init_pid : 0, s.init_start_time};
  size_t index = BH_TRY(free_nic_index(e->rec.config.nets, init));
  auto &nets = e->rec.config.nets;
  NicConfig nic;
  {
    // Allocated and entered under the table lock, as at create: a concurrent `network rm` sees
    // this NIC as a user, and the IPAM never holds an address no record names for long.
    std::lock_guard tl(table_mu_);
    nic = BH_TRY(allocate_nic(networks_, name, request, index));
    nets.push_back(nic);
  }
  auto undo = [&] {
    {
      std::lock_guard tl(table_mu_);
      nets.pop_back();
    }
    release_nics(networks_, name, {nic});
  };
  if (live) {
    if (auto r = hotplug_nic(networks_, nets.back(), nets.size() == 1, init); !r) {
      undo();
      return fail(fmt::format("attaching to {}: {}", name, r.error().message), r.error().code);
    }
  }
  if (auto r = save_locked(*e); !r) {
    if (live)
      (void)unplug_nic(networks_, nets.back());
    undo();
    return tl::unexpected(r.error());
  }
  events_.publish("container-updated", name);
  return nics_json({nets.back()})[0];
}

Result<json> Daemon::detach_nic(const std::string &name, const std::string &which) {
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  auto &s = e->rec.status;
  bool live = BH_TRY(plug_live(name, s, e->watch_fd.valid()));
  auto &nets = e->rec.config.nets;
  // ethN names a NIC; otherwise it is the network of exactly one NIC.
  auto it = std::find_if(nets.begin(), nets.end(), [&](const NicConfig &n) { return n.name == which; });
  if (it == nets.end()) {
    std::vector<std::string> on;
    for (const auto &n : nets)
      if (n.network == which)
        on.push_back(n.name);
    if (on.empty())
      return fail(fmt::format("container {} has no NIC {} (and none on a network {})", name, which, which),
                  ENOENT);
    if (on.size() > 1) {
      std::string list;
      for (const auto &n : on)
        list += (list.empty() ? "" : ", ") + n;
      return fail(
          fmt::format("container {} has {} NICs on network {} ({}): name one", name, on.size(), which, list),
          EINVAL);
    }
    it = std::find_if(nets.begin(), nets.end(), [&](const NicConfig &n) { return n.name == on.front(); });
  }
  NicConfig nic = *it;
  // A forward's DNAT rule names this NIC's address: detaching under it would leave the host
  // port pointing at an address the next container on the network may get.
  for (const auto &f : e->rec.config.ports)
    if (f.network == nic.network && std::find_if(nets.begin(), nets.end(), [&](const NicConfig &n) {
                                      return n.network == f.network && !n.ipv4.empty();
                                    }) == it)
      return fail(
          fmt::format("{} of {} carries port forward {}/{} (remove it first: bulkheadctl port rm {} {}/{})",
                      nic.name, name, f.host_port, f.proto, name, f.host_port, f.proto),
          EBUSY);
  bool was_first = it == nets.begin();
  if (live)
    if (auto r = unplug_nic(networks_, nic); !r)
      return fail(fmt::format("detaching {} from {}: {}", nic.name, name, r.error().message), r.error().code);
  size_t pos = static_cast<size_t>(it - nets.begin());
  {
    std::lock_guard tl(table_mu_);
    nets.erase(nets.begin() + static_cast<std::ptrdiff_t>(pos));
  }
  if (auto r = save_locked(*e); !r) {
    std::lock_guard tl(table_mu_);
    nets.insert(nets.begin() + static_cast<std::ptrdiff_t>(pos), nic);
    // The link is gone already; the record keeps the NIC, which the next start makes again.
    return tl::unexpected(r.error());
  }
  release_nics(networks_, name, {nic});
  // The default routes went with the first NIC: the next one carries them now (as it would at
  // the next start); readopt_nics adds what is missing and touches nothing else.
  if (live && was_first && !nets.empty())
    if (auto r = readopt_nics(networks_, nets, s.init_pid); !r)
      fmt::print(stderr, "bulkheadd: warning: {}: default routes via {}: {}\n", name, nets.front().name,
                 r.error().text());
  events_.publish("container-updated", name);
  return nics_json({nic})[0];
}

void Daemon::remove_stray_nics() {
  auto host = net::Netlink::open();
  if (!host)
    return;
  auto links = net::list_links(*host);
  if (!links)
    return;
  // Only names this daemon's containers' NICs would have: another bulkheadd sharing the netns
  // (another --root) keeps its own.
  std::vector<std::string> known, ours;
  {
    std::lock_guard tl(table_mu_);
    for (auto &[n, e] : entries_) {
      for (const auto &nic : e->rec.config.nets)
        known.push_back(nic.host_name);
      for (size_t i = 0; i < kMaxStrayIndex; ++i)
        ours.push_back(host_end_name(n, i));
    }
  }
  for (const auto &l : *links) {
    if (l.kind != "veth" || l.alias.rfind("bulkhead:nic/", 0) != 0 ||
        std::find(ours.begin(), ours.end(), l.name) == ours.end() ||
        std::find(known.begin(), known.end(), l.name) != known.end())
      continue;
    fmt::print(stderr, "bulkheadd: deleting {} ({}), a NIC no container has\n", l.name, l.alias);
    NicConfig stray;
    stray.host_name = l.name;
    teardown_nics_host(networks_, {stray}); // the veth (both ends) and an IFB of its cap
  }
}

} // namespace bulkhead::daemon
