// The replication schedule's two margins (daemon/replication_state.hpp): the preparation lead
// before a freeze, and the wake slack by which the next freeze is scheduled early, so that two
// freezes stay within one interval (the loss window's first term) while a wake-up is within it.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <vector>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "daemon/replication_state.hpp"
#include "daemon/urgent_window.hpp"

namespace {

using namespace bulkhead::daemon::replication;

TEST(ReplicationSchedule, WakeSlackHasAFloorAMarginAndCaps) {
  EXPECT_EQ(wake_slack(0, 2000), kMinWakeSlackMs); // nothing learned yet
  EXPECT_EQ(wake_slack(4, 2000), kMinWakeSlackMs); // one quick wake-up is not the next
  EXPECT_EQ(wake_slack(30, 2000), 30 + kWakeSlackMarginMs);
  EXPECT_EQ(wake_slack(400, 2000), kMaxWakeSlackMs);
  EXPECT_EQ(wake_slack(400, 1000), 1000 / 40); // a fortieth of a short interval
  EXPECT_EQ(wake_slack(0, 1000), kMinWakeSlackMs);
}

TEST(ReplicationSchedule, LeadIsTheLongestPreparationAndAMarginUpToHalfTheInterval) {
  EXPECT_EQ(preparation_lead(500, 5000), 500 + kLeadMarginMs);
  EXPECT_EQ(preparation_lead(900, 2000), 1000); // half the interval
  EXPECT_EQ(preparation_lead(400, 1000), 500);  // half the interval
  EXPECT_EQ(preparation_lead(5000, 60000), kMaxLeadMs);
}

// The replicator's rule, played over a run of wake-ups: each freeze schedules the next one
// interval after itself less the slack learned from the last kPrepareHistory wake-ups. Wakes
// of up to the floor never make two freezes more than one interval apart, whatever their order;
// the rounds come at most the slack early.
TEST(ReplicationSchedule, WakeUpsWithinTheSlackNeverStretchTheGapBeyondTheInterval) {
  const int64_t interval = 2000;
  const std::vector<int64_t> wakes = {4, 11, 15, 3, 19, 2, 20, 0, 7, 18, 1, 13};
  std::array<int64_t, kPrepareHistory> history{};
  size_t next = 0;
  int64_t freeze = 0;
  for (int64_t wake : wakes) {
    const int64_t longest = *std::max_element(history.begin(), history.end());
    const int64_t due = freeze + interval - wake_slack(longest, interval);
    const int64_t came = due + wake;
    EXPECT_LE(came - freeze, interval) << "a wake of " << wake << " ms";
    EXPECT_GE(came - freeze, interval - kMaxWakeSlackMs) << "a wake of " << wake << " ms";
    history[next] = wake;
    next = (next + 1) % history.size();
    freeze = came;
  }
}

// The freeze's window: real-time while it lives (the suite runs as root), the thread's own class
// and nice back afterwards, and nothing spawned meanwhile inherits it.
TEST(ReplicationSchedule, UrgentWindowRaisesTheThreadAndRestoresIt) {
  const id_t tid = static_cast<id_t>(::gettid());
  ASSERT_EQ(::setpriority(PRIO_PROCESS, tid, 3), 0);
  {
    bulkhead::daemon::UrgentWindow w;
    ASSERT_STREQ(w.how(), "fifo");
    const int policy = ::sched_getscheduler(0);
    EXPECT_EQ(policy & ~SCHED_RESET_ON_FORK, SCHED_FIFO);
    EXPECT_NE(policy & SCHED_RESET_ON_FORK, 0);
  }
  EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);
  errno = 0;
  EXPECT_EQ(::getpriority(PRIO_PROCESS, tid), 3);
  EXPECT_EQ(errno, 0);
  ASSERT_EQ(::setpriority(PRIO_PROCESS, tid, 0), 0);
}

} // namespace
