// bulkhead-monitor: one process per running system container (protocol table in monitor.cpp).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"

namespace bulkhead::daemon {

// The one JSON line the daemon writes on fd 3. Every path is absolute.
struct MonitorLaunch {
  ContainerConfig config;
  std::string lower, upper, work, rootfs; // overlay: template rootfs, container upper/work, target
  std::string bundle;                     // config.json is written here; rootfs is usually bundle/rootfs
  std::string oci_root;                   // RuntimeOptions::root
  // linux.cgroupsPath: "/bulkhead/NAME", or "SLICE:PREFIX:NAME" for the runtime's systemd driver
  // (systemd_cgroup; daemon/cgroup_placement.hpp).
  std::string cgroups_path;
  bool systemd_cgroup = false;
  std::string init_path; // the template's init, when config.init is empty
  std::string lxcfs_dir; // empty: no lxcfs binds
  std::string socket;    // control socket to create (0660, group bulkhead)
  std::string log;       // console log, rotated to log.1 at log_max bytes
  uint64_t log_max = 0;
  std::string state_file, exit_file;
  std::string restore_images; // "": create + start; else restore from this CRIU image directory
};

// Strict: unknown keys, missing keys, wrong types and relative paths are errors naming the key.
Result<MonitorLaunch> launch_from_json(const nlohmann::json &j);
nlohmann::json launch_to_json(const MonitorLaunch &launch);

// What the running phase needs; passed across the re-exec into watch mode as JSON.
struct WatchState {
  std::string name, oci_root, bundle, rootfs, socket, log, exit_file;
  uint64_t log_max = 0;
  int init_pid = 0;
  uint64_t init_start_time = 0;
  int monitor_pid = 0;
  uint64_t monitor_start_time = 0;
  int64_t started_unix = 0;
  int gid = -1; // group allowed on the control socket (bulkhead), -1 when the host has none
  // Inherited descriptors.
  int pty_master = -1, listen_fd = -1, init_pidfd = -1, log_fd = -1;
};

nlohmann::json watch_to_json(const WatchState &w);
Result<WatchState> watch_from_json(const nlohmann::json &j);

// main() of bulkhead-monitor.
int monitor_main(int argc, char **argv);

// Phase 1 (monitor_setup.cpp): reads the launch line on fd 3, builds and starts the container,
// replies on fd 3. On failure everything made is undone and the error is returned (already sent).
Result<WatchState> setup_container(int control_fd);
// Phase 2 (monitor_loop.cpp): serves until init exits, cleans up, writes exit_file. Returns the
// monitor's exit status.
int watch_container(WatchState &w);

} // namespace bulkhead::daemon
