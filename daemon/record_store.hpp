// Container records: the daemon's source of truth, one human-readable JSON file per container at
// <root>/containers/NAME/container.json, replaced durably (temp + fsync + rename + dir fsync), so a
// daemon killed at any instant leaves either the old or the new record, never a torn one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/container_config.hpp"

namespace bulkhead::daemon {

struct LastExit {
  int code = 0;   // exit status when exited
  int signal = 0; // signal number when killed
  int64_t at_unix = 0;
};

// What the daemon last knew about a container's processes, kept for re-adoption after a restart.
struct RuntimeStatus {
  bool want_running = false; // the user's intent: start/restart/onboot set it, stop clears it
  std::string state = "stopped";
  int restarts = 0;             // restarts made by the restart policy since create
  int consecutive_failures = 0; // failures since the last run that lasted kStableRunSeconds
  int64_t started_unix_ms = 0;
  pid_t monitor_pid = 0;
  uint64_t monitor_start_time = 0;
  pid_t init_pid = 0;
  uint64_t init_start_time = 0;
  LastExit last_exit;
  std::string error; // why the container is in state "error"
  // Fencing (issue 14, daemon/fencing.cpp): the cluster placed this container on that host (it
  // failed over there), so this copy is stopped and neither onboot, the restart policy nor `start`
  // runs it. Empty: not fenced.
  std::string fenced_by;
};

// Continuous replication to a standby host (issue 14, `bulkheadctl protect`): the user's intent,
// kept in the record so the replication resumes after a daemon restart. Empty standby: unprotected.
struct Protection {
  std::string standby;     // the standby host's --host-name (a paired remote of that name)
  int64_t interval_ms = 0; // how often a consistent image set goes to the standby
  std::string mode;        // "memory" (CRIU images + disk) or "disk" (the upper layer only)
};

struct ContainerRecord {
  ContainerConfig config;
  RuntimeStatus status;
  Protection protection;
};

// Where a container's files live. The monitor's control socket sits in <root>/sockets so its
// path stays well under sun_path's 108 bytes for any 63-character name. upper and work live in
// `disk` whatever the storage backend: a plain directory ("dir") or the mount point of the
// container's ext4 image `disk_image` ("ext4", daemon/container_disk.hpp).
struct ContainerPaths {
  std::string dir, record, upper, work, bundle, rootfs, log, monitor_state, exit_file, socket;
  std::string monitor_log; // the monitor's stderr: its warnings, and why a start failed
  std::string disk, disk_image;
};

class RecordStore {
public:
  explicit RecordStore(std::string root);

  ContainerPaths paths(const std::string &name) const;
  Status init_dirs() const;
  Status save(const ContainerRecord &record) const;
  Result<ContainerRecord> load(const std::string &name) const;
  // Every readable record; unreadable ones are reported through `bad` and skipped.
  std::vector<ContainerRecord> load_all(std::vector<std::string> *bad = nullptr) const;
  // Removes the container's directory (upper layer, logs, record) without following symlinks.
  Status remove(const std::string &name) const;
  const std::string &root() const { return root_; }

private:
  std::string root_;
};

nlohmann::json to_json(const RuntimeStatus &status);
nlohmann::json to_json(const Protection &protection);
Result<Protection> protection_from_json(const nlohmann::json &j);
Result<RuntimeStatus> status_from_json(const nlohmann::json &j);

// Removes a directory tree through directory fds, never following a symlink.
Status remove_tree(const std::string &path);

} // namespace bulkhead::daemon
