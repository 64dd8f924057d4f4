// Container-aware /proc through Debian's lxcfs (FUSE): memory, CPU, uptime and load as the
// container's cgroup sees them. The daemon uses a running lxcfs, or starts one in its own session
// (so it outlives the daemon, like the containers whose /proc files it serves).
#pragma once

#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

bool lxcfs_mounted(const std::string &dir);
// Ok when lxcfs serves `dir` afterwards; the error says why not (no binary, no FUSE, ...).
Status ensure_lxcfs(const std::string &dir);

} // namespace bulkhead::daemon
