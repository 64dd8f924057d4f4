// The calling thread runs ahead of ordinary work while this lives: SCHED_FIFO at the lowest
// real-time priority, or, where that is refused (no CAP_SYS_NICE, a real-time budget of 0), nice
// -10; back to what it was when this goes. The replicator holds one from the wait for a freeze's
// instant to the freeze: a sleep and a cgroup write, short and never spinning, whose lateness under
// CPU contention (the container, its stream and the standby on the same CPUs) is the loss window's
// overshoot. SCHED_RESET_ON_FORK: nothing this thread might start inherits the class.
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

namespace bulkhead::daemon {

class UrgentWindow {
public:
  UrgentWindow() {
    old_policy_ = ::sched_getscheduler(0);
    if (old_policy_ < 0 || ::sched_getparam(0, &old_param_) < 0)
      return;
    sched_param fifo{};
    fifo.sched_priority = 1;
    if (::sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &fifo) == 0) {
      how_ = How::Fifo;
      return;
    }
    errno = 0;
    old_nice_ = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    if (errno == 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), -10) == 0)
      how_ = How::Nice;
  }
  ~UrgentWindow() {
    if (how_ == How::Fifo)
      (void)::sched_setscheduler(0, old_policy_ & ~SCHED_RESET_ON_FORK, &old_param_);
    else if (how_ == How::Nice)
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), old_nice_);
  }
  UrgentWindow(const UrgentWindow &) = delete;
  UrgentWindow &operator=(const UrgentWindow &) = delete;
  // "fifo", "nice" or "none": what this window got.
  const char *how() const { return how_ == How::Fifo ? "fifo" : how_ == How::Nice ? "nice" : "none"; }

private:
  enum class How { None, Fifo, Nice };
  How how_ = How::None;
  int old_policy_ = -1;
  sched_param old_param_{};
  int old_nice_ = 0;
};

} // namespace bulkhead::daemon
