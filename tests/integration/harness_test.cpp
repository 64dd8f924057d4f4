// Self-checks of the harness (no runtime needed): a broken harness would make every test lie.
#include "harness.hpp"
#include <algorithm>

#include <signal.h>
#include <unistd.h>

using namespace bh_test;

namespace {

TEST(HarnessTest, CapturesStdoutStderrAndExitCode) {
  auto r = run_command({"/bin/sh", "-c", "echo out; echo err >&2; exit 5"});
  EXPECT_EQ(r.exit_code, 5) << r;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);
}

TEST(HarnessTest, FeedsStdin) {
  auto r = run_command({"/bin/cat"}, {.stdin_data = std::string(200000, 'z'), .timeout = 10s});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 200000u);
  auto empty = run_command({"/bin/cat"});
  EXPECT_EQ(empty.out, "") << "stdin defaults to /dev/null";
}

TEST(HarnessTest, ReportsSignals) {
  auto r = run_command({"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.signal, SIGTERM);
}

TEST(HarnessTest, TimeoutKillsTheWholeProcessGroup) {
  auto r =
      run_command({"/bin/sh", "-c", "sleep 30 & sleep 30; echo never"}, {.stdin_data = {}, .timeout = 300ms});
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(r.seconds, 5);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(wait_gone(live_children(), 2s).empty());
  reap_zombies();
}

TEST(HarnessTest, BackgroundChildHoldingStdoutDoesNotBlock) {
  // Like `create`, whose container init keeps the runtime's stdout open.
  auto r = run_command({"/bin/sh", "-c", "sleep 2 & echo started"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "started\n");
  EXPECT_LT(r.seconds, 1.5);
  wait_gone(live_children(), 5s);
  reap_zombies();
}

TEST(HarnessTest, MissingExecutable) {
  auto r = run_command({"/nonexistent/binary"});
  EXPECT_FALSE(r.spawn_error.empty());
  EXPECT_FALSE(r.ok());
}

TEST(HarnessTest, ProcessExistsTreatsZombiesAsGone) {
  pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(0);
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!is_zombie(pid) && std::chrono::steady_clock::now() < deadline)
    ::usleep(1000);
  EXPECT_TRUE(is_zombie(pid));
  EXPECT_FALSE(process_exists(pid));
  EXPECT_TRUE(process_exists(::getpid()));
  reap_zombies();
  EXPECT_FALSE(process_exists(pid));
}

TEST(HarnessTest, MountinfoDiff) {
  auto snap = mountinfo_snapshot();
  EXPECT_FALSE(snap.empty());
  EXPECT_TRUE(new_mounts(snap).empty());
  // Drop the last mount new_mounts() counts (the daemon suites' own directories it skips, so a
  // daemon test running alongside must not be the one dropped).
  auto fewer = snap;
  auto counted = std::find_if(fewer.rbegin(), fewer.rend(), [](const std::string &line) {
    return line.find(" /var/tmp/bhd-test-") == std::string::npos;
  });
  ASSERT_NE(counted, fewer.rend());
  fewer.erase(std::next(counted).base());
  EXPECT_EQ(new_mounts(fewer).size(), 1u);
}

} // namespace
