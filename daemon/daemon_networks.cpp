// The Daemon's side of managed networks: what ties a network to the containers using it.
#include <fmt/format.h>

#include "daemon/daemon.hpp"
#include "network/ipam.hpp"

namespace bulkhead::daemon {

Status Daemon::remove_network(const std::string &name) {
  // The table lock is held while removing, so a concurrent create cannot pick the network.
  std::lock_guard lock(table_mu_);
  return networks_.remove(name, [&](const std::string &) {
    std::vector<std::string> users;
    for (auto &[n, e] : entries_)
      for (const auto &nic : e->rec.config.nets)
        if (nic.network == name) {
          users.push_back(n);
          break;
        }
    return users;
  });
}

void Daemon::reconcile_addresses() {
  std::lock_guard lock(table_mu_);
  for (const auto &n : networks_.list()) {
    auto net = networks_.get(n["name"].get<std::string>());
    if (!net)
      continue;
    for (const auto *c : {&net->ipv4, &net->ipv6}) {
      if (!*c)
        continue;
      auto ipam = net::Ipam::open(networks_.ipam_path(net->name, (*c)->family()), **c, {(*c)->addr});
      if (!ipam)
        continue;
      auto held = ipam->list();
      if (!held)
        continue;
      for (const auto &a : *held) {
        bool known = false;
        for (auto &[name, e] : entries_)
          for (const auto &nic : e->rec.config.nets)
            if (a.owner == "container/" + name + "/" + nic.name && nic.network == net->name)
              known = true;
        if (!known) {
          fmt::print(stderr, "bulkheadd: network {}: releasing {} held by {}, which no container has\n",
                     net->name, a.address.str(), a.owner);
          (void)ipam->release(a.address);
        }
      }
    }
  }
}

} // namespace bulkhead::daemon
