// Monitor test harness: a busybox system-container template (busybox init as /sbin/init), one
// monitor per test started exactly as bulkheadd does (fd 3 = a socketpair end, one launch line,
// one reply line), and helpers around the control-socket client.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/container_config.hpp"
#include "daemon/monitor_client.hpp"

namespace bh_mon {

using json = nlohmann::json;
using namespace std::chrono_literals;

// <tmp>/rootfs: busybox-static with its applets, /sbin/init -> /bin/busybox, an inittab that
// prints "bulkhead-boot-ok", keeps a shell on the console and prints "bulkhead-shutdown".
const std::string &busybox_template();

std::string read_file(const std::string &path); // "" when unreadable
bool path_exists(const std::string &path);
// Mount points of the test process's mount namespace that contain `needle`.
std::vector<std::string> mounts_containing(const std::string &needle);
// True when /sys/fs/cgroup is cgroup2 with the memory controller (the VM), else false.
bool has_memory_controller();

struct Captured {
  int code = -1;     // exec's exit status, -1 when monitor_exec failed
  std::string error; // monitor_exec's error text
  std::string out, err;
};

class MonitorTest : public ::testing::Test {
protected:
  void SetUp() override;
  void TearDown() override;

  // The launch line bulkheadd would send; `config` is adjusted before it is serialized.
  json launch_line(const std::function<void(bulkhead::daemon::ContainerConfig &)> &config = {});
  // Spawns bulkhead-monitor, writes `line`, returns its reply (null on no reply).
  json start_monitor(const json &line);
  json start(const std::function<void(bulkhead::daemon::ContainerConfig &)> &config = {}) {
    return start_monitor(launch_line(config));
  }
  // Waits for the monitor to exit; its wait status, or nullopt at the timeout.
  std::optional<int> wait_monitor(std::chrono::milliseconds timeout = 20s);
  bool monitor_running() const;

  Captured exec(const std::vector<std::string> &args,
                const std::function<void(bulkhead::daemon::ExecRequest &)> &tweak = {},
                const std::string &stdin_data = "");
  // Runtime::kill of the container's init.
  void kill_init(int sig);

  std::string name_, dir_, oci_root_, cgroups_path_;
  pid_t monitor_pid_ = -1;
  std::string socket() const { return dir_ + "/ctl.sock"; }
  std::string log() const { return dir_ + "/console.log"; }
  std::string state_file() const { return dir_ + "/state.json"; }
  std::string exit_file() const { return dir_ + "/exit.json"; }
  std::string bundle() const { return dir_ + "/bundle"; }
  std::string rootfs() const { return dir_ + "/bundle/rootfs"; }
  std::string monitor_stderr() const { return read_file(dir_ + "/monitor.err"); }
  std::string lxcfs_dir_;
};

} // namespace bh_mon
