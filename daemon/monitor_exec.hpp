// The monitor's exec worker: a forked child that runs Runtime::exec for one control connection,
// so the single-threaded monitor keeps serving while the process runs.
#pragma once

#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "daemon/monitor.hpp"
#include "daemon/monitor_client.hpp"
#include "daemon/monitor_protocol.hpp"

namespace bulkhead::daemon {

// The process JSON for Runtime::exec: the container's own process (from bundle/config.json) with
// the request's args, terminal, window size, cwd, env and user; user names are resolved in the
// container's /etc/passwd and /etc/group (read inside rootfs, never through a symlink out of it).
Result<nlohmann::json> exec_process(const nlohmann::json &container_process, const ExecRequest &r,
                                    const std::string &rootfs);

// Forks the worker with copies of `conn` (the reply {"exit":N} or {"error":...} goes there) and
// of the three stdio fds; the monitor then closes its own. Returns the worker's pid.
Result<pid_t> spawn_exec_worker(const WatchState &w, const ExecRequest &r, int conn,
                                const std::vector<UniqueFd> &stdio);

} // namespace bulkhead::daemon
