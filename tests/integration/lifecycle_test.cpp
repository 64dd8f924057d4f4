// Container lifecycle: run, create/start/state/kill/delete and the status each step leaves.
#include "harness.hpp"

#include <signal.h>

#include <thread>

using namespace bh_test;

namespace {

class LifecycleTest : public BulkheadTest {
protected:
  // Waits until `path` exists (the container writes it), up to `timeout`.
  static bool wait_for_file(const std::string &path, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!path_exists(path)) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }
};

TEST_F(LifecycleTest, RunEchoPrintsHello) {
  auto r = run_container({"echo", "hello"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "hello\n") << r;
}

TEST_F(LifecycleTest, RunPropagatesExitCode) {
  auto r = run_container({"sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r;
}

TEST_F(LifecycleTest, RunContainerProcessIsPidOne) {
  auto r = run_container({"sh", "-c", "echo $$"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "1") << r;
}

TEST_F(LifecycleTest, RunPassesStdinThrough) {
  auto r = run_container({"cat"}, {}, {.stdin_data = std::string("line one\nline two\n")});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "line one\nline two\n") << r;
}

TEST_F(LifecycleTest, RunForegroundLeavesNothingBehind) {
  auto r = run_container({"true"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(root_dirs().empty()) << "state dirs left after run: " << ::testing::PrintToString(root_dirs());
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(LifecycleTest, RunKilledBySignalExitsWith128PlusSignal) {
  std::string bundle = make_bundle({"sleep", "100"});
  Command run = bh_spawn({"run", "--bundle", bundle, "fg"});
  ASSERT_EQ(wait_for_status("fg", "running"), "running");
  auto k = bh({"kill", "fg", "KILL"});
  EXPECT_TRUE(k.ok()) << k;
  auto r = run.wait();
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r;
  EXPECT_FALSE(state_dir_exists("fg"));
}

TEST_F(LifecycleTest, CreateLeavesCreatedContainerWithPidFromPidFile) {
  std::string bundle = make_bundle({"sh", "-c", "touch /started; exec sleep 100"});
  auto r = bh({"create", "--bundle", bundle, "--pid-file", pid_file("c1"), "c1"});
  ASSERT_TRUE(r.ok()) << r;

  std::string pid_text = read_file(pid_file("c1"));
  ASSERT_FALSE(pid_text.empty()) << "pid file is empty or missing";
  EXPECT_NE(pid_text.back(), '\n') << "pid file has a trailing newline: '" << pid_text << "'";
  pid_t pid = read_pid_file(pid_file("c1"));
  ASSERT_GT(pid, 0) << "pid file: '" << pid_text << "'";

  auto st = state("c1");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->value("status", ""), "created") << st->dump(2);
  EXPECT_EQ(st->value("id", ""), "c1") << st->dump(2);
  EXPECT_EQ(st->value("pid", 0), pid) << st->dump(2);
  EXPECT_EQ(st->value("bundle", ""), bundle) << st->dump(2);
  EXPECT_TRUE(st->contains("ociVersion")) << st->dump(2);
  EXPECT_TRUE(process_exists(pid));
  EXPECT_TRUE(state_dir_exists("c1"));
  // The user process must not run before start.
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/started")) << "the container process ran before start";

  auto s = bh({"start", "c1"});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(wait_for_status("c1", "running"), "running");
  EXPECT_TRUE(wait_for_file(rootfs(bundle) + "/started")) << "the container process did not run after start";
  auto st2 = state("c1");
  ASSERT_TRUE(st2) << st2.error();
  EXPECT_EQ(st2->value("pid", 0), pid) << st2->dump(2);
}

TEST_F(LifecycleTest, StartedProcessExitIsStoppedEvenIfNotReaped) {
  std::string bundle = make_bundle({"true"});
  pid_t pid = create_and_start(bundle, "st");
  ASSERT_GT(pid, 0);
  // The test process is a child subreaper and reaps only in TearDown: if the init was re-parented
  // to us it is a zombie now, and must still count as stopped.
  EXPECT_EQ(wait_for_status("st", "stopped"), "stopped");
  EXPECT_FALSE(process_exists(pid));
  auto d = bh({"delete", "st"});
  EXPECT_TRUE(d.ok()) << d;
  EXPECT_FALSE(state_dir_exists("st"));
}

TEST_F(LifecycleTest, KillTermStopsContainerThatHandlesIt) {
  // An init only receives signals from an ancestor namespace it installed a handler for (SIGKILL
  // and SIGSTOP aside): a bare `sleep` as pid 1 would ignore TERM, so trap it in a shell.
  for (const std::string id : {"term", "default"}) {
    std::string bundle = make_bundle({"sh", "-c", "trap 'exit 0' TERM; touch /ready; sleep 100 & wait"});
    pid_t pid = create_and_start(bundle, id);
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(wait_for_file(rootfs(bundle) + "/ready"));
    auto k = id == "term" ? bh({"kill", id, "TERM"}) : bh({"kill", id});
    EXPECT_TRUE(k.ok()) << k;
    EXPECT_EQ(wait_for_status(id, "stopped"), "stopped") << "kill " << (id == "term" ? "TERM" : "(default)");
    EXPECT_TRUE(wait_gone({pid}, 5s).empty());
  }
}

TEST_F(LifecycleTest, KillAcceptsSignalNumberAndNames) {
  std::string bundle = make_bundle({"sleep", "100"});
  int i = 0;
  for (const std::string sig : {"9", "KILL", "SIGKILL"}) {
    std::string id = "k" + std::to_string(++i);
    pid_t pid = create_and_start(bundle, id);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(wait_for_status(id, "running"), "running");
    auto k = bh({"kill", id, sig});
    EXPECT_TRUE(k.ok()) << k;
    EXPECT_EQ(wait_for_status(id, "stopped"), "stopped") << "signal " << sig;
    EXPECT_TRUE(wait_gone({pid}, 5s).empty()) << "signal " << sig;
  }
}

TEST_F(LifecycleTest, KillAllSignalsEveryProcess) {
  std::string bundle = make_bundle({"sh", "-c", "sleep 100 & sleep 100 & wait"});
  pid_t pid = create_and_start(bundle, "all");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("all", "running"), "running");
  auto k = bh({"kill", "--all", "all", "KILL"});
  EXPECT_TRUE(k.ok()) << k;
  EXPECT_EQ(wait_for_status("all", "stopped"), "stopped");
  EXPECT_TRUE(wait_gone(live_children(), 5s).empty());
}

TEST_F(LifecycleTest, DeleteRemovesStateProcessAndMounts) {
  // mounts_before_ was taken in SetUp, before the container existed.
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "del");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("del", "running"), "running");
  auto k = bh({"kill", "del", "KILL"});
  ASSERT_TRUE(k.ok()) << k;
  ASSERT_EQ(wait_for_status("del", "stopped"), "stopped");
  auto d = bh({"delete", "del"});
  ASSERT_TRUE(d.ok()) << d;
  EXPECT_FALSE(state_dir_exists("del"));
  EXPECT_TRUE(root_dirs().empty()) << ::testing::PrintToString(root_dirs());
  EXPECT_FALSE(process_exists(pid));
  EXPECT_TRUE(no_new_mounts());
  auto s = bh({"state", "del"});
  EXPECT_NE(s.exit_code, 0) << s;
}

TEST_F(LifecycleTest, DeleteRunningNeedsForce) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "run1");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("run1", "running"), "running");
  auto d = bh({"delete", "run1"});
  EXPECT_NE(d.exit_code, 0) << d;
  EXPECT_EQ(status_of("run1"), "running") << "a refused delete must leave the container alone";
  EXPECT_TRUE(process_exists(pid));
  auto f = bh({"delete", "--force", "run1"});
  ASSERT_TRUE(f.ok()) << f;
  EXPECT_FALSE(state_dir_exists("run1"));
  EXPECT_TRUE(wait_gone({pid}, 5s).empty()) << "init " << pid << " survived delete --force";
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(LifecycleTest, DeleteForceRemovesCreatedContainer) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create(bundle, "cr");
  ASSERT_GT(pid, 0);
  auto f = bh({"delete", "--force", "cr"});
  ASSERT_TRUE(f.ok()) << f;
  EXPECT_FALSE(state_dir_exists("cr"));
  EXPECT_TRUE(wait_gone({pid}, 5s).empty());
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(LifecycleTest, RunDetachReturnsWhileContainerRuns) {
  std::string bundle = make_bundle({"sleep", "100"});
  auto r = bh({"run", "--detach", "--bundle", bundle, "--pid-file", pid_file("det"), "det"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_LT(r.seconds, 10) << r;
  pid_t pid = read_pid_file(pid_file("det"));
  ASSERT_GT(pid, 0);
  auto st = state("det");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->value("status", ""), "running") << st->dump(2);
  EXPECT_EQ(st->value("pid", 0), pid) << st->dump(2);
  EXPECT_TRUE(process_exists(pid));
  auto f = bh({"delete", "--force", "det"});
  EXPECT_TRUE(f.ok()) << f;
  EXPECT_TRUE(wait_gone({pid}, 5s).empty());
}

} // namespace
