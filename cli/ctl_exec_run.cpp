// exec and console sessions over the container's monitor socket (daemon/monitor_client.hpp).
#include <cerrno>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bulkhead/unique_fd.hpp"
#include "cli/ctl_exec.hpp"
#include "cli/ctl_terminal.hpp"

namespace bulkhead::ctl {

namespace {

bool write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

} // namespace

int run_exec(Context &ctx, const std::string &name, daemon::ExecRequest request) {
  auto socket = monitor_socket(ctx, name);
  if (!socket)
    return report(socket.error());
  if (request.tty)
    window_size(request.rows, request.cols);
  // Raw only with -t: the container's pty then does the line discipline, and ^C reaches it as a byte.
  RawTerminal raw(request.tty ? STDIN_FILENO : -1);
  // SIGWINCH as a signalfd: the monitor is told of every window change of our terminal.
  UniqueFd winch;
  if (request.tty && ::isatty(STDIN_FILENO)) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    winch.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  auto status = daemon::monitor_exec(*socket, request, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO,
                                     winch ? winch.get() : -1);
  raw.restore();
  if (!status)
    return report(status.error());
  return *status;
}

int run_console(Context &ctx, const std::string &name) {
  auto socket = monitor_socket(ctx, name);
  if (!socket)
    return report(socket.error());
  auto fd_or = daemon::monitor_console(*socket);
  if (!fd_or)
    return report(fd_or.error());
  UniqueFd console(*fd_or);
  fmt::print(stderr, "Connected to {}'s console; detach with Ctrl-] q\n", name);
  RawTerminal raw(STDIN_FILENO);
  DetachFilter filter;
  bool stdin_open = true, detached = false;
  std::string failure;
  char buf[16384];
  while (!detached) {
    struct pollfd fds[2] = {{console.get(), POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      failure = fmt::format("waiting on {}'s console: {}", name, std::strerror(errno));
      break;
    }
    if (fds[0].revents) {
      ssize_t n = ::read(console.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; // the monitor closed the session: the container stopped
      if (!write_all(STDOUT_FILENO, buf, static_cast<size_t>(n)))
        break;
    }
    if (stdin_open && fds[1].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        // Input ended (a pipe): keep showing output until the console closes.
        stdin_open = false;
        continue;
      }
      std::string out = filter.feed(buf, static_cast<size_t>(n), detached);
      if (!write_all(console.get(), out.data(), out.size())) {
        failure = fmt::format("writing to {}'s console: {}", name, std::strerror(errno));
        break;
      }
    }
  }
  raw.restore();
  if (!failure.empty())
    return report(failure);
  fmt::print(stderr, "\n{} from {}'s console\n", detached ? "Detached" : "Disconnected", name);
  return 0;
}

} // namespace bulkhead::ctl
