#include "runtime/process_id.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::runtime {

Result<ProcStat> read_proc_stat(pid_t pid) {
  char path[64];
  fmt::format_to_n(path, sizeof path - 1, "/proc/{}/stat", pid).out[0] = '\0';
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("reading {}", path);
  char buf[1024];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0)
    return failf_errno("reading {}", path);
  buf[n] = '\0';
  // comm may contain spaces and ')': fields restart after the last ')'.
  const char *p = std::strrchr(buf, ')');
  if (!p)
    return failf("parsing {}", path);
  ProcStat st;
  p += 2;
  st.state = *p;
  // state is field 3; starttime is field 22.
  int field = 3;
  while (*p && field < 22) {
    if (*p++ == ' ')
      ++field;
  }
  st.start_time = std::strtoull(p, nullptr, 10);
  return st;
}

bool is_alive(const ProcessId &id) {
  if (id.pid <= 0)
    return false;
  auto st = read_proc_stat(id.pid);
  if (!st)
    return false;
  return st->start_time == id.start_time && st->state != 'Z' && st->state != 'X';
}

Result<UniqueFd> open_pidfd(const ProcessId &id) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, id.pid, 0)));
  if (!fd)
    return failf_errno("opening pidfd of pid {}", id.pid);
  if (!is_alive(id))
    return fail(fmt::format("pid {} is no longer the container's init", id.pid), ESRCH);
  return fd;
}

Status send_signal(const ProcessId &id, int sig) {
  UniqueFd fd = BH_TRY(open_pidfd(id));
  if (::syscall(SYS_pidfd_send_signal, fd.get(), sig, nullptr, 0) < 0)
    return failf_errno("sending signal {} to pid {}", sig, id.pid);
  return {};
}

Result<bool> wait_exit(const ProcessId &id, int timeout_ms) {
  auto fd = open_pidfd(id);
  if (!fd)
    return true; // already gone (or a zombie)
  struct pollfd pfd {
    fd->get(), POLLIN, 0
  };
  for (;;) {
    int r = ::poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return failf_errno("waiting for pid {}", id.pid);
    return r > 0;
  }
}

} // namespace bulkhead::runtime
