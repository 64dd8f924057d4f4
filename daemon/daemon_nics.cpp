// The Daemon's side of NIC re-adoption: a restarted daemon re-checks the NICs of a running
// container it found again (daemon/nic_host.hpp), without tearing anything down.
#include <fmt/core.h>

#include "daemon/daemon.hpp"
#include "daemon/nic_host.hpp"

namespace bulkhead::daemon {

void Daemon::readopt_nics_locked(Entry &e) {
  const auto &s = e.rec.status;
  if (e.rec.config.nets.empty() || !s.init_pid || (s.state != "running" && s.state != "frozen"))
    return;
  if (auto r = readopt_nics(networks_, e.rec.config.nets, s.init_pid); !r)
    fmt::print(stderr, "bulkheadd: warning: {}: re-adopting its NICs: {}\n", e.rec.config.name,
               r.error().text());
}

} // namespace bulkhead::daemon
