// plan_cluster_evacuation: where `host evacuate` without a REMOTE sends each container, from a
// cluster view as GET /1.0/cluster answers it.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "daemon/evacuation_plan.hpp"

namespace {

using bulkhead::daemon::plan_cluster_evacuation;
using bulkhead::daemon::plan_rebalance;
using nlohmann::json;

json host(const std::string &name, const std::string &state, int containers) {
  json list = json::array();
  for (int i = 0; i < containers; ++i)
    list.push_back({{"name", name + "-c" + std::to_string(i)}, {"state", "running"}});
  return {{"name", name}, {"state", state}, {"containers", list}};
}

TEST(EvacuationPlan, SpreadsOverOnlinePairedHostsByLoad) {
  json view = {{"hosts",
                {host("a", "online", 3), host("b", "online", 2), host("c", "online", 0),
                 host("d", "offline", 0), host("e", "evacuating", 0), host("f", "online", 0)}}};
  std::set<std::string> paired = {"b", "c", "d", "e"}; // f is online but not paired
  auto plan = plan_cluster_evacuation({"x1", "x2", "x3", "x4"}, view, "a",
                                      [&](const std::string &h) { return paired.count(h) > 0; });
  ASSERT_EQ(plan.size(), 4u);
  // c (0) gets x1 and x2; then b and c have 2 each and b comes first by name: x3; then c: x4.
  EXPECT_EQ(plan[0].remote, "c");
  EXPECT_EQ(plan[1].remote, "c");
  EXPECT_EQ(plan[2].remote, "b");
  EXPECT_EQ(plan[3].remote, "c");
  for (const auto &t : plan) {
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_NE(t.remote, "a") << "never this host";
    EXPECT_NE(t.remote, "d") << "never an offline host";
    EXPECT_NE(t.remote, "e") << "never one being evacuated";
    EXPECT_NE(t.remote, "f") << "never one not paired";
  }
}

TEST(EvacuationPlan, NoTargetNamesWhyForEachContainer) {
  json view = {{"hosts", {host("a", "online", 1), host("f", "online", 0), host("d", "offline", 0)}}};
  auto plan = plan_cluster_evacuation({"x1", "x2"}, view, "a", [](const std::string &) { return false; });
  ASSERT_EQ(plan.size(), 2u);
  for (const auto &t : plan) {
    EXPECT_TRUE(t.remote.empty());
    EXPECT_NE(t.error.find("no online host of the cluster is paired"), std::string::npos) << t.error;
    EXPECT_NE(t.error.find("f"), std::string::npos) << t.error;
  }
  auto alone = plan_cluster_evacuation({"x1"}, json{{"hosts", {host("a", "online", 1)}}}, "a",
                                       [](const std::string &) { return true; });
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_EQ(alone[0].error, "no other host of the cluster is online");
  auto garbage =
      plan_cluster_evacuation({"x1"}, json{{"hosts", 7}}, "a", [](const std::string &) { return true; });
  ASSERT_EQ(garbage.size(), 1u);
  EXPECT_TRUE(garbage[0].remote.empty());
}

// plan_rebalance: this host sheds containers to the least loaded reachable hosts until it holds at most
// one more than the least loaded; the candidates' order is the order they go in.
TEST(RebalancePlan, ShedsUntilAtMostOneAboveTheLeastLoaded) {
  json view = {{"hosts",
                {host("a", "online", 6), host("b", "online", 1), host("c", "online", 0),
                 host("d", "offline", 0), host("f", "online", 0)}}};
  std::set<std::string> reachable = {"b", "c", "d"}; // f online but not reachable, d offline
  auto by = [&](const std::string &h) { return reachable.count(h) > 0; };
  auto plan = plan_rebalance({"s1", "s2", "r1", "r2", "r3", "r4"}, view, "a", by);
  // a 6, b 1, c 0: c gets s1 (a 5), then b and c have 1 each, b first by name: s2 (a 4); c: r1 (a 3);
  // now b 2, c 2: a 3 is at most one above, so the rest stay.
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].name, "s1");
  EXPECT_EQ(plan[0].remote, "c");
  EXPECT_EQ(plan[1].name, "s2");
  EXPECT_EQ(plan[1].remote, "b");
  EXPECT_EQ(plan[2].name, "r1");
  EXPECT_EQ(plan[2].remote, "c");
  for (const auto &t : plan)
    EXPECT_TRUE(t.error.empty());
}

TEST(RebalancePlan, NothingWhenBalancedOrNobodyToTakeOne) {
  auto all = [](const std::string &) { return true; };
  // One above the least loaded: balanced, moving one would only swap the extra container.
  json even = {{"hosts", {host("a", "online", 3), host("b", "online", 2), host("c", "online", 2)}}};
  EXPECT_TRUE(plan_rebalance({"x1", "x2", "x3"}, even, "a", all).empty());
  // Alone, or the others offline or unreachable.
  json alone = {{"hosts", {host("a", "online", 5), host("b", "offline", 0)}}};
  EXPECT_TRUE(plan_rebalance({"x1", "x2", "x3", "x4", "x5"}, alone, "a", all).empty());
  json far = {{"hosts", {host("a", "online", 5), host("b", "online", 0)}}};
  EXPECT_TRUE(plan_rebalance({"x1", "x2"}, far, "a", [](const std::string &) { return false; }).empty());
  // This host not (yet) in etcd's view: its own candidates count.
  json unseen = {{"hosts", {host("b", "online", 0)}}};
  auto plan = plan_rebalance({"x1", "x2", "x3", "x4"}, unseen, "a", all);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].remote, "b");
}

} // namespace
