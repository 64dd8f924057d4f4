// The Daemon's side of managed networks: what ties a network to the containers using it.
#include <fmt/format.h>

#include "daemon/daemon.hpp"

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

} // namespace bulkhead::daemon
