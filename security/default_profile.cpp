// Written from the documented rules of Docker's/containerd's default seccomp profile: an allow
// list (default: EPERM) of ordinary syscalls, personality() only with the usual domains, clone()
// without namespace flags, and the syscalls that need a capability allowed only when the process
// may hold it (mount, setns, ptrace-like peeking, module loading, clock setting, ...).
#include "security/default_profile.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace bulkhead::security {

namespace {

using ojson = nlohmann::ordered_json;

const char *const kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
};

struct CapGated {
  const char *cap;
  std::vector<const char *> syscalls;
};

const CapGated kCapGated[] = {
    {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
    {"CAP_SYS_ADMIN",
     {"bpf",
      "clone",
      "clone3",
      "fanotify_init",
      "fsconfig",
      "fsmount",
      "fsopen",
      "fspick",
      "lookup_dcookie",
      "mount",
      "mount_setattr",
      "move_mount",
      "name_to_handle_at",
      "open_tree",
      "perf_event_open",
      "quotactl",
      "quotactl_fd",
      "setdomainname",
      "sethostname",
      "setns",
      "syslog",
      "umount",
      "umount2",
      "unshare"}},
    {"CAP_SYS_BOOT", {"reboot"}},
    {"CAP_SYS_CHROOT", {"chroot"}},
    {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
    {"CAP_SYS_PACCT", {"acct"}},
    {"CAP_SYS_PTRACE",
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
    {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
    {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
    {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
    {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {"CAP_SYSLOG", {"syslog"}},
    {"CAP_BPF", {"bpf"}},
    {"CAP_PERFMON", {"perf_event_open"}},
};

// Namespace-creating clone flags: CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;

ojson names(const std::vector<const char *> &list) {
  ojson a = ojson::array();
  for (const char *n : list)
    a.push_back(n);
  return a;
}

ojson rule(ojson syscalls, const char *action, ojson args = nullptr) {
  ojson r;
  r["names"] = std::move(syscalls);
  r["action"] = action;
  if (!args.is_null())
    r["args"] = std::move(args);
  return r;
}

ojson arg(unsigned index, uint64_t value, const char *op, uint64_t value_two = 0) {
  ojson a;
  a["index"] = index;
  a["value"] = value;
  if (value_two || std::string_view(op) == "SCMP_CMP_MASKED_EQ")
    a["valueTwo"] = value_two;
  a["op"] = op;
  return a;
}

bool kernel_at_least(int major, int minor) {
  struct utsname u {};
  int ma = 0, mi = 0;
  if (::uname(&u) < 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2)
    return false;
  return ma > major || (ma == major && mi >= minor);
}

ojson architectures() {
#if defined(__x86_64__)
  return ojson::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"});
#elif defined(__i386__)
  return ojson::array({"SCMP_ARCH_X86"});
#elif defined(__aarch64__)
  return ojson::array({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"});
#elif defined(__arm__)
  return ojson::array({"SCMP_ARCH_ARM"});
#elif defined(__powerpc64__)
  return ojson::array({"SCMP_ARCH_PPC64LE"});
#elif defined(__s390x__)
  return ojson::array({"SCMP_ARCH_S390X", "SCMP_ARCH_S390"});
#elif defined(__riscv) && __riscv_xlen == 64
  return ojson::array({"SCMP_ARCH_RISCV64"});
#else
  return ojson::array();
#endif
}

std::vector<const char *> arch_specific() {
#if defined(__x86_64__) || defined(__i386__)
  return {"arch_prctl", "modify_ldt"};
#elif defined(__aarch64__) || defined(__arm__)
  return {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
          "breakpoint",       "cacheflush",          "set_tls"};
#elif defined(__s390x__)
  return {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"};
#elif defined(__riscv)
  return {"riscv_flush_icache"};
#else
  return {};
#endif
}

} // namespace

const std::vector<std::string> &default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return caps;
}

nlohmann::ordered_json default_seccomp_profile(const std::vector<std::string> &caps) {
  auto has = [&](const char *c) { return std::find(caps.begin(), caps.end(), c) != caps.end(); };
  ojson p;
  p["defaultAction"] = "SCMP_ACT_ERRNO";
  p["defaultErrnoRet"] = 1; // EPERM
  p["architectures"] = architectures();
  ojson syscalls = ojson::array();
  std::vector<const char *> allowed(std::begin(kAllowed), std::end(kAllowed));
  // ptrace on kernels older than 4.8 could bypass seccomp; newer ones re-check the filter.
  if (kernel_at_least(4, 8) && !has("CAP_SYS_PTRACE")) {
    allowed.push_back("ptrace");
    allowed.push_back("process_vm_readv");
    allowed.push_back("process_vm_writev");
  }
  auto arch = arch_specific();
  allowed.insert(allowed.end(), arch.begin(), arch.end());
  syscalls.push_back(rule(names(allowed), "SCMP_ACT_ALLOW"));
  // personality(): only PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query value.
  for (uint64_t v : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull})
    syscalls.push_back(
        rule(names({"personality"}), "SCMP_ACT_ALLOW", ojson::array({arg(0, v, "SCMP_CMP_EQ")})));
  for (const auto &g : kCapGated)
    if (has(g.cap))
      syscalls.push_back(rule(names(g.syscalls), "SCMP_ACT_ALLOW"));
  if (!has("CAP_SYS_ADMIN")) {
    // clone() without any namespace flag; clone3 hides its flags in memory, so it reports ENOSYS
    // and libc falls back to clone.
    syscalls.push_back(rule(names({"clone"}), "SCMP_ACT_ALLOW",
                            ojson::array({arg(0, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ", 0)})));
    ojson enosys = rule(names({"clone3"}), "SCMP_ACT_ERRNO");
    enosys["errnoRet"] = 38; // ENOSYS
    syscalls.push_back(std::move(enosys));
  }
  p["syscalls"] = std::move(syscalls);
  return p;
}

} // namespace bulkhead::security
