// The monitor's checkpoint worker: a forked child that dumps the container through libbulkhead's
// checkpoint (CRIU via libcriu, which forks `criu swrk` itself: the daemon never could), so the
// monitor keeps serving its console and control socket while CRIU works.
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "bulkhead/runtime.hpp"
#include "daemon/monitor.hpp"

namespace bulkhead::daemon {

// {"op":"checkpoint","images":DIR,"stop":bool,"pre_dump":bool,"parent":PDIR,"wait_for_go":bool}:
// strict, DIR absolute and existing; PDIR (the previous pre-dump, for an incremental image) an
// existing directory, relative to DIR as CRIU takes it. Relative, because CRIU follows the parent
// link again at restore from inside the restored tree's mount namespace, where an absolute host
// path is not.
struct CheckpointRequest {
  std::string images;
  bool stop = false;     // false: the container runs on after the dump (CRIU's leave-running)
  bool pre_dump = false; // memory pages only, the tree runs on (a live migration's pre-copy)
  std::string parent;
  // The worker starts CRIU, replies {"ready":true} and dumps only after the line {"op":"go"}: the
  // daemon freezes the container in between (MonitorDump in monitor_client.hpp). The go may name
  // the images and parent instead (images_from_go).
  bool wait_for_go = false;
};
Result<CheckpointRequest> checkpoint_request_from_json(const nlohmann::json &j);
// A go line's "images" and "parent", when it has them, checked as the request's are, into r.
Status images_from_go(const nlohmann::json &go, CheckpointRequest &r);

// Forks the worker with a copy of `conn`; it replies {"ok":true} or {"error":...} there when CRIU
// is done (with wait_for_go, after {"ready":true} and the daemon's {"op":"go"}). With stop, CRIU kills the
// tree after a good dump and init's exit ends the monitor as any exit would (its exit_file then says
// "checkpointed":true).
Result<pid_t> spawn_checkpoint_worker(const WatchState &w, const CheckpointRequest &r, int conn);

// The options every system-container dump and restore share (docs/checkpoint.md, "bulkheadd"):
// established TCP connections and file locks are kept; the network namespace is external (its
// NICs belong to the host's bridges and are made afresh at restore, with the same addresses).
CheckpointOptions system_checkpoint_options(const CheckpointRequest &r, const std::string &work_dir);
RestoreOptions system_restore_options(const std::string &images, const std::string &bundle,
                                      const std::string &work_dir);

} // namespace bulkhead::daemon
