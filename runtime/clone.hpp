// Starting a child process with fork semantics (the child returns 0 on a copy of the stack).
#pragma once

#include <csignal>

namespace bulkhead::runtime {

struct CloneResult {
  long pid = -1; // -1 with errno on failure, 0 in the child
  // False when the child could not be cloned into `cgroup_fd`: the caller moves it there
  // (cgroup.procs) before it may run anything of the container's.
  bool in_cgroup = false;
};

// clone3 with `flags` (| CLONE_INTO_CGROUP when cgroup_fd >= 0, | CLONE_PIDFD when pidfd is
// non-null). clone3 without CLONE_INTO_CGROUP when the kernel refuses that (before 5.7, or a
// cgroup it cannot take), and clone(2) when clone3 itself answers ENOSYS: kernels before 5.3,
// valgrind, and seccomp profiles that deny clone3 with ENOSYS so that libc falls back.
// `exit_signal` as clone3's (0 for a CLONE_PARENT child, as the intermediate makes init).
CloneResult clone_child(unsigned long flags, int cgroup_fd, int *pidfd = nullptr, int exit_signal = SIGCHLD);

} // namespace bulkhead::runtime
