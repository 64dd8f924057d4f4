// The standby side of continuous replication (issue 14). Placeholder until replication lands: no
// host holds replicas yet, so there is nothing to activate.
#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

Status Daemon::activate_replica(const std::string &name) {
  return fail("activating " + name + ": this host holds no replica of it", ENOENT);
}

} // namespace bulkhead::daemon
