// Two bulkheadd daemons paired over TLS on this host (`trust add` / `remote add`,
// daemon/peer_server.cpp): host B is the fixture's daemon, listening on 198.18.90.1:8443 as
// host-b; host A is a second bulkheadd (host-a) with its own root and socket. Both run in a
// network namespace of the test's own. Used by remote_test.cpp and replica_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "daemon_fixture.hpp"

namespace bh_test {

inline constexpr const char *kAddressB = "198.18.90.1:8443";

inline std::string last_line(const std::string &text) {
  auto end = text.find_last_not_of('\n');
  if (end == std::string::npos)
    return "";
  auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

class DaemonRemoteTest : public bh_test::DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    use_private_netns();
    ASSERT_TRUE(ip_in_netns({"addr", "add", "198.18.90.1/32", "dev", "lo"}).ok());
    a_dir_ = dir_ + "/host-a";
    ASSERT_TRUE(run_command({"mkdir", "-p", a_dir_}).ok());
  }
  void TearDown() override {
    // Host A's containers go with it (their monitors would outlive its daemon).
    if (a_pid_ > 0)
      if (auto l = ctl_a({"list", "--json"}); l.ok())
        for (const auto &c : json::parse(l.out, nullptr, false))
          if (c.is_object())
            ctl_a({"destroy", c.value("name", std::string()), "--force"});
    stop_a();
    DaemonTest::TearDown();
  }

  void start_b() { start_daemon({"--listen", kAddressB, "--host-name", "host-b"}); }

  void start_a() {
    // The test process's own fd path: the child's descriptor is gone once it execs nsenter.
    const std::string net = "--net=" + netns_path();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int log = ::open((a_dir_ + "/bulkheadd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::string root = a_dir_ + "/root", sock = a_dir_ + "/a.sock", cg = cgroup_parent_ + "-a";
      // As DaemonTest::start_daemon: bulkheadd's default id pool whatever /etc/subuid says.
      std::string subuid = a_dir_ + "/no-subuid", subgid = a_dir_ + "/no-subgid";
      ::execlp("nsenter", "nsenter", net.c_str(), bh_test::bulkheadd_path().c_str(), "--root", root.c_str(),
               "--socket", sock.c_str(), "--cgroup-parent", cg.c_str(), "--no-lxcfs", "--host-name", "host-a",
               "--subuid-file", subuid.c_str(), "--subgid-file", subgid.c_str(),
               static_cast<char *>(nullptr));
      _exit(127);
    }
    a_pid_ = pid;
    for (int i = 0; i < 300; ++i) {
      if (ctl_a({"remote", "list"}).ok())
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "host A's bulkheadd did not answer: " << read_file(a_dir_ + "/bulkheadd.log");
  }
  void stop_a() {
    if (a_pid_ > 0) {
      ::kill(a_pid_, SIGTERM);
      ::waitpid(a_pid_, nullptr, 0);
      a_pid_ = -1;
    }
    ::rmdir(("/sys/fs/cgroup" + cgroup_parent_ + "-a").c_str());
    ::rmdir(("/sys/fs/cgroup/unified" + cgroup_parent_ + "-a").c_str());
  }
  CommandResult ctl_a(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {bh_test::bulkheadctl_path(), "--socket", a_dir_ + "/a.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  std::string fingerprint_of_a() {
    auto r = run_command({"curl", "-s", "--unix-socket", a_dir_ + "/a.sock", "http://bulkheadd/1.0"});
    return json::parse(r.out).value("fingerprint", "");
  }
  // `trust add NAME` on B; the token is the last line.
  std::string token_for(const std::string &name, const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args = {"trust", "add", name};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = ctl(args);
    EXPECT_TRUE(r.ok()) << r;
    return last_line(r.out);
  }

  std::string a_dir_;
  pid_t a_pid_ = -1;
};

} // namespace bh_test
