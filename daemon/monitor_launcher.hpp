// Starts a container's monitor from the (multithreaded) daemon without fork(): posix_spawn
// (clone(CLONE_VM|CLONE_VFORK) + exec in glibc) with only fds 0-2 (/dev/null) and 3 (the
// request/reply socket) open in the child, in a new session so the monitor outlives the daemon.
//
// | # | actor   | message                                                                 |
// |---|---------|-------------------------------------------------------------------------|
// | 1 | daemon  | posix_spawn(bulkhead-monitor), fd 3 = one end of a SOCK_STREAM pair      |
// | 2 | daemon  | one JSON line: the start request (config, paths; see MonitorRequest)    |
// | 3 | monitor | mounts the overlay, creates + starts the container (libbulkhead)        |
// | 3a| monitor | with NICs (config.nets): after create {"created":true,"pid":N}         |
// | 3b| daemon  | on_created(N) sets the NICs up in init's netns; {"start":true} or       |
// |   |         | {"abort":"..."} (the monitor then undoes everything and replies ok:false)|
// | 4 | monitor | one JSON line: {"ok":true,"pid":N,"init_start_time":T} or {"ok":false,"error":...} |
// | 5 | both    | close; from here the daemon watches the monitor through a pidfd          |
// A reply that does not come within the timeout kills the monitor (and so its half-made container,
// which the monitor's own Revert cannot undo then: the daemon cleans up as for a dead monitor).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

struct MonitorStarted {
  pid_t monitor_pid = 0;
  pid_t init_pid = 0;
  uint64_t init_start_time = 0;
};

// The monitor's stderr is appended to stderr_path ("" = /dev/null).
Result<MonitorStarted> launch_monitor(const std::string &monitor_binary, const nlohmann::json &request,
                                      int timeout_ms, const std::string &stderr_path,
                                      const std::function<Status(pid_t init_pid)> &on_created = {});

} // namespace bulkhead::daemon
