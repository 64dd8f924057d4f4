#include "security/process_attrs.hpp"

#include <linux/sched.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

namespace bulkhead::security {

namespace {

// The ioprio ABI (linux/ioprio.h): that header names a parameter `class` since linux-libc-dev
// 6.1.1xx, so C++ cannot include it.
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioWhoProcess = 1;
enum IoprioClass { IOPRIO_CLASS_RT = 1, IOPRIO_CLASS_BE = 2, IOPRIO_CLASS_IDLE = 3 };

// The kernel's struct sched_attr (linux/sched/types.h clashes with glibc's sched_param).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

template <class T>
Result<T> lookup(const std::map<std::string, T, std::less<>> &table, const std::string &name,
                 const char *what) {
  auto it = table.find(name);
  if (it == table.end())
    return failf("{}: unknown value {:?}", what, name);
  return it->second;
}

} // namespace

Result<unsigned long> resolve_personality(const oci::Personality &p) {
  static const std::map<std::string, unsigned long, std::less<>> domains = {{"LINUX", PER_LINUX},
                                                                            {"LINUX32", PER_LINUX32}};
  static const std::map<std::string, unsigned long, std::less<>> flags = {
      {"UNAME26", UNAME26},
      {"ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE},
      {"FDPIC_FUNCPTRS", FDPIC_FUNCPTRS},
      {"MMAP_PAGE_ZERO", MMAP_PAGE_ZERO},
      {"ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT},
      {"READ_IMPLIES_EXEC", READ_IMPLIES_EXEC},
      {"ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT},
      {"SHORT_INODE", SHORT_INODE},
      {"WHOLE_SECONDS", WHOLE_SECONDS},
      {"STICKY_TIMEOUTS", STICKY_TIMEOUTS},
      {"ADDR_LIMIT_3GB", ADDR_LIMIT_3GB},
  };
  unsigned long v = BH_TRY(lookup(domains, p.domain, "linux.personality.domain"));
  for (const auto &f : p.flags)
    v |= BH_TRY(lookup(flags, f, "linux.personality.flags"));
  return v;
}

Result<int> resolve_io_priority(const oci::IoPriority &p) {
  static const std::map<std::string, int, std::less<>> classes = {{"IOPRIO_CLASS_RT", IOPRIO_CLASS_RT},
                                                                  {"IOPRIO_CLASS_BE", IOPRIO_CLASS_BE},
                                                                  {"IOPRIO_CLASS_IDLE", IOPRIO_CLASS_IDLE}};
  int klass = BH_TRY(lookup(classes, p.klass, "process.ioPriority.class"));
  if (p.priority < 0 || p.priority > 7)
    return failf("process.ioPriority.priority: {} is out of range (0-7)", p.priority);
  return (klass << kIoprioClassShift) | p.priority;
}

Result<SchedulerPlan> resolve_scheduler(const oci::Scheduler &s) {
  static const std::map<std::string, uint32_t, std::less<>> policies = {
      {"SCHED_OTHER", SCHED_NORMAL},     {"SCHED_FIFO", SCHED_FIFO}, {"SCHED_RR", SCHED_RR},
      {"SCHED_BATCH", SCHED_BATCH},      {"SCHED_ISO", 4},           {"SCHED_IDLE", SCHED_IDLE},
      {"SCHED_DEADLINE", SCHED_DEADLINE}};
  static const std::map<std::string, uint64_t, std::less<>> flags = {
      {"SCHED_FLAG_RESET_ON_FORK", SCHED_FLAG_RESET_ON_FORK},
      {"SCHED_FLAG_RECLAIM", SCHED_FLAG_RECLAIM},
      {"SCHED_FLAG_DL_OVERRUN", SCHED_FLAG_DL_OVERRUN},
      {"SCHED_FLAG_KEEP_POLICY", SCHED_FLAG_KEEP_POLICY},
      {"SCHED_FLAG_KEEP_PARAMS", SCHED_FLAG_KEEP_PARAMS},
      {"SCHED_FLAG_UTIL_CLAMP_MIN", SCHED_FLAG_UTIL_CLAMP_MIN},
      {"SCHED_FLAG_UTIL_CLAMP_MAX", SCHED_FLAG_UTIL_CLAMP_MAX}};
  SchedulerPlan p;
  p.policy = BH_TRY(lookup(policies, s.policy, "process.scheduler.policy"));
  for (const auto &f : s.flags)
    p.flags |= BH_TRY(lookup(flags, f, "process.scheduler.flags"));
  if (s.nice < -20 || s.nice > 19)
    return failf("process.scheduler.nice: {} is out of range (-20..19)", s.nice);
  if (s.priority < 0)
    return failf("process.scheduler.priority: {} must not be negative", s.priority);
  bool realtime = p.policy == SCHED_FIFO || p.policy == SCHED_RR;
  if (realtime && (s.priority < 1 || s.priority > 99))
    return failf("process.scheduler.priority: {} must be 1-99 for {}", s.priority, s.policy);
  if (!realtime && s.priority != 0)
    return failf("process.scheduler.priority: must be 0 for {}", s.policy);
  if (p.policy == SCHED_DEADLINE &&
      (s.runtime == 0 || s.runtime > s.deadline || (s.period && s.deadline > s.period)))
    return fail("process.scheduler: SCHED_DEADLINE needs 0 < runtime <= deadline <= period");
  p.nice = s.nice;
  p.priority = static_cast<uint32_t>(s.priority);
  p.runtime = s.runtime;
  p.deadline = s.deadline;
  p.period = s.period;
  return p;
}

Status apply_process_attributes(const SecurityPlan &plan) {
  if (plan.personality && ::personality(*plan.personality) < 0)
    return failf_errno("setting personality {:#x}", *plan.personality);
  if (plan.io_priority && ::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, *plan.io_priority) < 0)
    return failf_errno("setting I/O priority {:#x}", *plan.io_priority);
  if (plan.scheduler) {
    const SchedulerPlan &s = *plan.scheduler;
    SchedAttr attr{};
    attr.size = sizeof attr;
    attr.sched_policy = s.policy;
    attr.sched_flags = s.flags;
    attr.sched_nice = s.nice;
    attr.sched_priority = s.priority;
    attr.sched_runtime = s.runtime;
    attr.sched_deadline = s.deadline;
    attr.sched_period = s.period;
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
      return failf_errno("setting scheduler policy {}", s.policy);
  }
  return {};
}

} // namespace bulkhead::security
