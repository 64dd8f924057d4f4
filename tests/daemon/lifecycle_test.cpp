// The hosting face end to end on this host: template import, create/start/exec/info, a daemon
// SIGKILL + restart that keeps the container on the same pid, the restart policy, stop/destroy
// leaving nothing behind.
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "daemon_fixture.hpp"

namespace bh_test {

TEST_F(DaemonTest, LifecycleSurvivesDaemonKillAndRestartsByPolicy) {
  start_daemon();
  import_busybox();
  auto r = ctl({"template", "list", "--json"});
  ASSERT_TRUE(r.ok()) << r;
  auto templates = json::parse(r.out);
  ASSERT_EQ(templates.size(), 1u);
  EXPECT_EQ(templates[0]["name"], "busybox");
  EXPECT_EQ(templates[0]["stop_signal"], "SIGUSR2");

  r = ctl({"create", "web1", "--template", "busybox", "--restart", "on-failure", "--hostname", "web1.example",
           "--env", "GREETING=hello"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("web1")["state"], "stopped");
  r = ctl({"start", "web1"});
  ASSERT_TRUE(r.ok()) << r;
  auto i = info("web1");
  ASSERT_EQ(i["state"], "running") << i.dump();
  pid_t pid = i["pid"].get<pid_t>();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(contains(read_file("/proc/" + std::to_string(pid) + "/cmdline"), "init"));

  // exec: exit status passes through; the container is its own pid namespace and hostname.
  r = ctl({"exec", "web1", "--", "sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r;
  r = ctl({"exec", "web1", "--", "hostname"});
  EXPECT_EQ(trim(r.out), "web1.example") << r;
  r = ctl({"exec", "web1", "--", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $container"});
  EXPECT_TRUE(contains(r.out, "init")) << r;
  r = ctl({"exec", "web1", "--", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"});
  EXPECT_TRUE(contains(r.out, "container=bulkhead")) << r;
  EXPECT_TRUE(contains(r.out, "GREETING=hello")) << r;

  // The daemon dies (SIGKILL) and comes back: the container kept running on the same pid.
  kill_daemon();
  EXPECT_TRUE(process_exists(pid));
  start_daemon();
  i = info("web1");
  EXPECT_EQ(i["state"], "running");
  EXPECT_EQ(i["pid"], pid);
  r = ctl({"exec", "web1", "--", "true"});
  EXPECT_EQ(r.exit_code, 0) << r;

  // Init killed from outside: on-failure restarts it, restarts = 1, a new init.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  i = wait_info("web1",
                [&](const json &j) { return j["state"] == "running" && j["pid"] != pid && j["pid"] != 0; });
  EXPECT_EQ(i["restarts"], 1) << i.dump();
  EXPECT_EQ(i["last_exit"]["signal"], SIGKILL);
  pid_t pid2 = i["pid"].get<pid_t>();

  // stop: busybox init gets SIGUSR2 (poweroff) and the container ends cleanly, not restarted.
  r = ctl({"stop", "web1", "--timeout", "20"});
  ASSERT_TRUE(r.ok()) << r;
  i = info("web1");
  EXPECT_EQ(i["state"], "stopped");
  EXPECT_EQ(i["pid"], 0);
  EXPECT_EQ(i["restarts"], 1);
  EXPECT_TRUE(wait_gone({pid2}, 10s).empty());

  r = ctl({"destroy", "web1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/web1"));
  r = ctl({"list", "--json"});
  EXPECT_EQ(json::parse(r.out).size(), 0u);
  r = ctl({"template", "rm", "busybox"});
  EXPECT_TRUE(r.ok()) << r;
}

TEST_F(DaemonTest, ContainerStoppedWhileDaemonDownIsRestartedByPolicy) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox", "--restart", "always"}).ok());
  ASSERT_TRUE(ctl({"create", "c2", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  ASSERT_TRUE(ctl({"start", "c2"}).ok());
  pid_t p1 = info("c1")["pid"], p2 = info("c2")["pid"];
  kill_daemon();
  ::kill(p1, SIGKILL);
  ::kill(p2, SIGKILL);
  EXPECT_TRUE(wait_gone({p1, p2}, 10s).empty());
  start_daemon();
  auto i1 = wait_info("c1", [&](const json &j) { return j["state"] == "running"; });
  EXPECT_NE(i1["pid"], p1);
  EXPECT_EQ(i1["restarts"], 1);
  auto i2 = wait_info("c2", [&](const json &j) { return j["state"] == "stopped"; });
  EXPECT_EQ(i2["last_exit"]["signal"], SIGKILL) << i2.dump();
}

TEST_F(DaemonTest, DestroyRunningNeedsForceAndLeavesNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "d1", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "d1"}).ok());
  pid_t pid = info("d1")["pid"];
  auto r = ctl({"destroy", "d1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "running")) << r;
  r = ctl({"template", "rm", "busybox"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "d1")) << r;
  r = ctl({"destroy", "d1", "--force"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(wait_gone({pid}, 10s).empty());
  EXPECT_FALSE(path_exists(root_ + "/containers/d1"));
  EXPECT_FALSE(path_exists(root_ + "/sockets/d1.sock"));
  EXPECT_FALSE(path_exists(root_ + "/oci/d1"));
}

TEST_F(DaemonTest, FreezeUnfreezeSetAndLogs) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "f1", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "f1"}).ok());
  auto r = ctl({"set", "f1", "--restart", "always", "--onboot"});
  ASSERT_TRUE(r.ok()) << r;
  auto i = info("f1");
  EXPECT_EQ(i["restart_policy"], "always");
  EXPECT_EQ(i["onboot"], true);
  r = ctl({"exec", "f1", "--", "sh", "-c", "echo console-marker > /dev/console"});
  EXPECT_TRUE(r.ok()) << r;
  bool seen = false;
  for (int k = 0; k < 50 && !seen; ++k) {
    seen = contains(ctl({"logs", "f1"}).out, "console-marker");
    if (!seen)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(seen) << ctl({"logs", "f1"});
  if (path_exists("/sys/fs/cgroup/cgroup.freeze") ||
      path_exists("/sys/fs/cgroup/unified/cgroup.subtree_control")) {
    r = ctl({"freeze", "f1"});
    if (r.ok()) {
      EXPECT_EQ(info("f1")["state"], "frozen");
      EXPECT_TRUE(ctl({"unfreeze", "f1"}).ok());
      EXPECT_EQ(info("f1")["state"], "running");
    }
  }
}

// Regression: destroy held a container's lock while taking the table lock, the supervisor the
// other way round; parallel force-destroys (each exit wakes the supervisor) deadlocked.
TEST_F(DaemonTest, ParallelForceDestroysDoNotDeadlock) {
  start_daemon();
  import_busybox();
  constexpr int kN = 4;
  std::vector<pid_t> pids;
  for (int i = 0; i < kN; ++i) {
    std::string name = "p" + std::to_string(i);
    ASSERT_TRUE(ctl({"create", name, "--template", "busybox", "--restart", "always", "--start"}).ok());
    pids.push_back(info(name)["pid"].get<pid_t>());
  }
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> threads;
    std::vector<CommandResult> results(kN);
    for (int i = round; i < kN; i += 1 + round)
      threads.emplace_back([&, i] {
        // Round 0 races destroys against stops' exits; round 1 destroys what round 0 left.
        std::string name = "p" + std::to_string(i);
        results[i] = round == 0 && i % 2 ? ctl({"stop", name, "--timeout", "0"}, 60s)
                                         : ctl({"destroy", name, "--force"}, 60s);
      });
    for (auto &t : threads)
      t.join();
    for (auto &r : results)
      EXPECT_FALSE(r.timed_out) << r;
    for (int i = round; i < kN; i += 1 + round)
      EXPECT_TRUE(results[i].ok()) << results[i];
  }
  EXPECT_EQ(json::parse(ctl({"list", "--json"}).out).size(), 0u);
  EXPECT_TRUE(wait_gone(pids, 10s).empty());
}

} // namespace bh_test
