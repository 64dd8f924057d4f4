#include "runtime/clone.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bulkhead::runtime {

namespace {

long clone3_call(unsigned long flags, int cgroup_fd, int *pidfd, int exit_signal) {
  struct clone_args ca {};
  ca.flags = flags;
  ca.exit_signal = static_cast<uint64_t>(exit_signal);
  if (cgroup_fd >= 0) {
    ca.flags |= CLONE_INTO_CGROUP;
    ca.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  if (pidfd) {
    ca.flags |= CLONE_PIDFD;
    ca.pidfd = reinterpret_cast<uint64_t>(pidfd);
  }
  return ::syscall(SYS_clone3, &ca, sizeof ca);
}

} // namespace

CloneResult clone_child(unsigned long flags, int cgroup_fd, int *pidfd, int exit_signal) {
  long pid = clone3_call(flags, cgroup_fd, pidfd, exit_signal);
  if (pid >= 0)
    return {pid, cgroup_fd >= 0};
  if (cgroup_fd >= 0 && (errno == EINVAL || errno == E2BIG)) {
    pid = clone3_call(flags, -1, pidfd, exit_signal);
    if (pid >= 0 || errno != ENOSYS)
      return {pid, false};
  }
  if (errno != ENOSYS)
    return {pid, false};
  // clone(2): flags, stack (null: the child runs on a copy of ours, as with fork), parent_tid
  // (where CLONE_PIDFD stores the pidfd), then child_tid and tls (unused; their order differs
  // between architectures).
  if (pidfd)
    flags |= CLONE_PIDFD;
  return {
      ::syscall(SYS_clone, flags | static_cast<unsigned long>(exit_signal), nullptr, pidfd, nullptr, nullptr),
      false};
}

} // namespace bulkhead::runtime
