// Drives the real bulkheadd + bulkheadctl (+ bulkhead-monitor) binaries: each test gets its own
// --root, API socket and cgroup parent, a busybox template built from busybox-static, and a
// TearDown that destroys whatever is left and checks nothing leaked (mounts, processes).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "../integration/harness.hpp"

namespace bh_test {

struct HttpAnswer {
  int status = 0;
  json body; // parsed JSON, or the raw text as a JSON string
};

class DaemonTest : public ::testing::Test {
protected:
  // Raw HTTP on the API socket through curl, for what bulkheadctl would never send.
  HttpAnswer http(const std::string &method, const std::string &path, const std::string &body = "");
  void SetUp() override;
  void TearDown() override;

  // Starts bulkheadd (extra flags appended) and waits until its socket answers.
  void start_daemon(const std::vector<std::string> &extra = {});
  // From now on bulkheadd (and so its bridges and containers) runs in a network namespace of the
  // test's own, which outlives daemon restarts: the host's network is never touched. The socket
  // is a file, so bulkheadctl reaches the daemon from the host's netns.
  void use_private_netns();
  // The private netns as a path for nsenter --net= (empty when there is none).
  std::string netns_path() const;
  // `ip -o link` (or another ip command) in the daemon's netns.
  CommandResult ip_in_netns(const std::vector<std::string> &args);
  // SIGKILL: the daemon dies at once, as in a crash.
  void kill_daemon();
  CommandResult ctl(const std::vector<std::string> &args, std::chrono::milliseconds timeout = 120s);
  json info(const std::string &name);
  // Imports the busybox template as `name` (once per test).
  void import_busybox(const std::string &name = "busybox");
  // Polls info until pred holds (or fails the test after timeout).
  json wait_info(const std::string &name, const std::function<bool(const json &)> &pred,
                 std::chrono::milliseconds timeout = 60s);

  std::string dir_, root_, socket_, cgroup_parent_, busybox_rootfs_;
  pid_t daemon_pid_ = -1;
  int netns_fd_ = -1;
  std::vector<std::string> mounts_before_;
};

std::string bulkheadd_path();
std::string bulkheadctl_path();
// A busybox system-container rootfs (init = busybox init) made once per test binary.
const std::string &busybox_system_rootfs();

} // namespace bh_test
