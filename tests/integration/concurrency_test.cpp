// Many runtime processes at once on one --root: no lost containers, no leaks, no double creates.
#include "harness.hpp"

#include <fmt/format.h>

using namespace bh_test;

namespace {

class ConcurrencyTest : public BulkheadTest {
protected:
  // Spawns all commands before waiting for any, then collects every result.
  std::vector<CommandResult> in_parallel(const std::vector<std::vector<std::string>> &commands) {
    std::vector<Command> running;
    running.reserve(commands.size());
    for (auto &args : commands)
      running.push_back(bh_spawn(args, {.stdin_data = {}, .timeout = 60s}));
    std::vector<CommandResult> results;
    for (auto &c : running)
      results.push_back(c.wait());
    return results;
  }
};

TEST_F(ConcurrencyTest, TwentyContainersCreatedStartedAndDeletedInParallel) {
  constexpr int kCount = 20;
  std::string bundle = make_bundle({"sleep", "100"});
  std::vector<std::string> ids;
  for (int i = 0; i < kCount; ++i)
    ids.push_back(fmt::format("par{:02}", i));

  std::vector<std::vector<std::string>> creates;
  for (auto &id : ids)
    creates.push_back({"create", "--bundle", bundle, "--pid-file", pid_file(id), id});
  auto created = in_parallel(creates);
  std::vector<pid_t> pids;
  for (int i = 0; i < kCount; ++i) {
    EXPECT_TRUE(created[i].ok()) << created[i];
    pids.push_back(read_pid_file(pid_file(ids[i])));
    EXPECT_GT(pids.back(), 0) << ids[i];
  }
  auto list = bh({"list", "--format", "json"});
  ASSERT_TRUE(list.ok()) << list;
  json arr = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << list;
  EXPECT_EQ(arr.size(), static_cast<size_t>(kCount)) << list;
  for (int i = 0; i < kCount; ++i) {
    auto st = state(ids[i]);
    ASSERT_TRUE(st) << st.error();
    EXPECT_EQ(st->value("status", ""), "created") << ids[i];
    EXPECT_EQ(st->value("pid", 0), pids[i]) << ids[i];
  }

  std::vector<std::vector<std::string>> starts;
  for (auto &id : ids)
    starts.push_back({"start", id});
  for (auto &r : in_parallel(starts))
    EXPECT_TRUE(r.ok()) << r;
  for (auto &id : ids)
    EXPECT_EQ(wait_for_status(id, "running"), "running") << id;

  std::vector<std::vector<std::string>> deletes;
  for (auto &id : ids)
    deletes.push_back({"delete", "--force", id});
  for (auto &r : in_parallel(deletes))
    EXPECT_TRUE(r.ok()) << r;

  EXPECT_TRUE(root_dirs().empty()) << ::testing::PrintToString(root_dirs());
  EXPECT_TRUE(wait_gone(pids, 5s).empty()) << "container inits survived delete --force";
  EXPECT_TRUE(wait_gone(live_children(), 5s).empty()) << "leftover processes";
  EXPECT_TRUE(no_new_mounts());
  auto q = bh({"list", "-q"});
  EXPECT_TRUE(q.ok()) << q;
  EXPECT_EQ(trim(q.out), "") << q;
}

TEST_F(ConcurrencyTest, ParallelCreatesOfOneIdYieldExactlyOneContainer) {
  constexpr int kCount = 8;
  std::string bundle = make_bundle({"sleep", "100"});
  std::vector<std::vector<std::string>> creates;
  for (int i = 0; i < kCount; ++i)
    creates.push_back(
        {"create", "--bundle", bundle, "--pid-file", tmp() + fmt::format("/same{}.pid", i), "same"});
  auto results = in_parallel(creates);
  int ok = 0;
  pid_t winner = 0;
  for (int i = 0; i < kCount; ++i) {
    if (results[i].ok()) {
      ++ok;
      winner = read_pid_file(tmp() + fmt::format("/same{}.pid", i));
    } else {
      EXPECT_FALSE(trim(results[i].err).empty()) << results[i];
    }
  }
  EXPECT_EQ(ok, 1) << "parallel creates of one id: " << ok << " succeeded";
  ASSERT_GT(winner, 0);
  auto st = state("same");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->value("status", ""), "created");
  EXPECT_EQ(st->value("pid", 0), winner);
  // Exactly the winner's init is alive: the losers cleaned up after themselves.
  std::vector<pid_t> others;
  for (pid_t p : live_children())
    if (p != winner)
      others.push_back(p);
  EXPECT_TRUE(wait_gone(others, 3s).empty()) << "losing creates left processes behind";
  auto d = bh({"delete", "--force", "same"});
  EXPECT_TRUE(d.ok()) << d;
  EXPECT_TRUE(root_dirs().empty());
}

TEST_F(ConcurrencyTest, ParallelForegroundRuns) {
  constexpr int kCount = 10;
  std::string bundle = make_bundle({"sh", "-c", "echo $$ out; exit 3"});
  std::vector<std::vector<std::string>> runs;
  for (int i = 0; i < kCount; ++i)
    runs.push_back({"run", "--bundle", bundle, fmt::format("fg{}", i)});
  for (auto &r : in_parallel(runs)) {
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_EQ(r.out, "1 out\n") << r;
  }
  EXPECT_TRUE(root_dirs().empty()) << ::testing::PrintToString(root_dirs());
  EXPECT_TRUE(no_new_mounts());
}

} // namespace
