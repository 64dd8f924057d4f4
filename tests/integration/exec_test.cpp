// exec: a second process inside a running container, with its namespaces, cgroup and confinement.
#include "harness.hpp"

#include <sys/wait.h>

#include <fstream>
#include <thread>

using namespace bh_test;

namespace {

// The "0::/path" line of a /proc/PID/cgroup text (v1 lines differ on hybrid hosts).
std::string cgroup2_line(const std::string &text) {
  for (const auto &l : split_lines(text))
    if (l.rfind("0::", 0) == 0)
      return l;
  return "";
}
std::string cgroup2_of(pid_t pid) {
  return cgroup2_line(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
}

class ExecTest : public BulkheadTest {
protected:
  // A running `sleep 100` container.
  void start_sleeper(const std::string &id, const Mutator &mutate = {}) {
    auto bundle = make_bundle({"sleep", "100"}, mutate);
    init_pid_ = create_and_start(bundle, id);
    ASSERT_GT(init_pid_, 0);
  }
  pid_t init_pid_ = 0;
};

TEST_F(ExecTest, RunsInsideAndPropagatesExitStatus) {
  start_sleeper("ex");
  auto r = bh({"exec", "ex", "sh", "-c", "echo in-exec; exit 5"});
  EXPECT_EQ(r.exit_code, 5) << r;
  EXPECT_EQ(trim(r.out), "in-exec") << r;
}

TEST_F(ExecTest, SharesThePidNamespaceAndCgroupOfInit) {
  start_sleeper("ex");
  auto r = bh({"exec", "ex", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r;
  EXPECT_EQ(trim(lines[0]), "sleep 100") << r;
  // The exec'd shell sits in init's cgroup v2 (as the host sees it).
  EXPECT_EQ(cgroup2_line(r.out.substr(r.out.find('\n') + 1)), cgroup2_of(init_pid_)) << r;
}

TEST_F(ExecTest, ArgumentsThatLookLikeFlagsBelongToTheCommand) {
  start_sleeper("ex");
  auto r = bh({"exec", "ex", "echo", "-n", "--not-a-flag"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "--not-a-flag") << r;
}

TEST_F(ExecTest, UserEnvAndCwdOverrides) {
  start_sleeper("ex");
  auto r = bh({"exec", "--user", "1000:1001", "--env", "FOO=bar", "--cwd", "/tmp", "ex", "sh", "-c",
               "id -u; id -g; echo $FOO; pwd"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"1000", "1001", "bar", "/tmp"})) << r;
}

TEST_F(ExecTest, ProcessJsonFile) {
  start_sleeper("ex");
  auto file = tmp() + "/process.json";
  json p = default_config({"sh", "-c", "echo $X; pwd"})["process"];
  p["env"].push_back("X=from-json");
  p["cwd"] = "/etc";
  write_file(file, p.dump());
  auto r = bh({"exec", "--process", file, "ex"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"from-json", "/etc"})) << r;
}

TEST_F(ExecTest, NoHostFdLeaksAndNoInheritableCaps) {
  start_sleeper("ex");
  auto r = bh({"exec", "ex", "sh", "-c", "echo $(ls /proc/self/fd); grep CapInh /proc/self/status"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r;
  EXPECT_EQ(trim(lines[0]), "0 1 2 3") << r; // 3: ls's own directory fd
  EXPECT_EQ(split_words(lines[1]).back(), "0000000000000000") << r;
}

TEST_F(ExecTest, DetachedWithPidFile) {
  start_sleeper("ex");
  auto pidfile = tmp() + "/exec.pid";
  auto r = bh({"exec", "--detach", "--pid-file", pidfile, "ex", "sleep", "50"});
  ASSERT_EQ(r.exit_code, 0) << r;
  pid_t pid = read_pid_file(pidfile);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(process_exists(pid));
  EXPECT_EQ(cgroup2_of(pid), cgroup2_of(init_pid_));
  EXPECT_FALSE(cgroup2_of(pid).empty());
  // The detached process was re-parented to us (a subreaper, like containerd's shim): a pid
  // namespace's init cannot finish dying until its other processes are reaped, so reap while the
  // delete runs, as a shim does.
  auto del = bh_spawn({"delete", "--force", "ex"});
  bool reaped = false;
  for (int i = 0; i < 500 && !reaped; ++i) {
    reaped = ::waitpid(pid, nullptr, WNOHANG) == pid;
    if (!reaped)
      std::this_thread::sleep_for(10ms);
  }
  auto deleted = del.wait();
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_TRUE(reaped) << "the exec'd process outlived delete --force";
}

TEST_F(ExecTest, MissingExecutableFailsClearly) {
  start_sleeper("ex");
  auto r = bh({"exec", "ex", "no-such-binary"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "executable file not found")) << r;
  EXPECT_EQ(split_lines(r.err).size(), 1u) << r;
  EXPECT_EQ(status_of("ex"), "running");
}

TEST_F(ExecTest, StoppedOrUnknownContainerFailsClearly) {
  auto bundle = make_bundle({"true"});
  ASSERT_GT(create_and_start(bundle, "done"), 0);
  wait_for_status("done", "stopped");
  auto r = bh({"exec", "done", "true"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "stopped")) << r;
  auto u = bh({"exec", "nope", "true"});
  EXPECT_NE(u.exit_code, 0) << u;
  EXPECT_TRUE(contains(u.err, "does not exist")) << u;
}

} // namespace
