#include "runtime/console.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "bulkhead/fd_passing.hpp"
#include "rootfs/safe_path.hpp"

#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

namespace bulkhead::runtime {

Result<UniqueFd> connect_console_socket(const std::string &path) {
  return connect_unix_socket(path, "console socket");
}

Result<UniqueFd> open_pty(int root_fd, const oci::Process &process, int console_socket) {
  UniqueFd ptmx = BH_TRY(context(rootfs::open_in_root(root_fd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY),
                                 "process.terminal needs a devpts mount at /dev/pts"));
  struct statfs sfs {};
  if (::fstatfs(ptmx.get(), &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC)
    return fail("process.terminal: /dev/pts/ptmx in the container is not on a devpts filesystem");
  int unlock = 0;
  if (::ioctl(ptmx.get(), TIOCSPTLCK, &unlock) < 0)
    return failf_errno("unlocking the pty");
  // The peer is opened through the master, never by path, so nothing in the image can swap it.
  UniqueFd slave(::ioctl(ptmx.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave)
    return failf_errno("opening the pty slave");
  if (process.console_size) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(process.console_size->height);
    ws.ws_col = static_cast<unsigned short>(process.console_size->width);
    if (::ioctl(slave.get(), TIOCSWINSZ, &ws) < 0)
      return failf_errno("setting the console size");
  }
  (void)::fchown(slave.get(), process.user.uid, static_cast<gid_t>(-1));
  BH_CHECK(send_fd(console_socket, ptmx.get(), "/dev/ptmx", "the pty master over the console socket"));
  return slave;
}

Result<UniqueFd> setup_console(int root_fd, const oci::Process &process, int console_socket) {
  UniqueFd slave = BH_TRY(open_pty(root_fd, process, console_socket));
  UniqueFd console = BH_TRY(rootfs::ensure_mount_target(root_fd, "/dev/console", rootfs::TargetKind::File));
  if (::mount(rootfs::fd_path(slave.get()).c_str(), rootfs::fd_path(console.get()).c_str(), nullptr, MS_BIND,
              nullptr) < 0)
    return failf_errno("binding the pty to /dev/console");
  return slave;
}

Status make_controlling_terminal(UniqueFd slave) {
  if (::setsid() < 0)
    return failf_errno("setsid");
  if (::ioctl(slave.get(), TIOCSCTTY, 0) < 0)
    return failf_errno("setting the controlling terminal");
  for (int fd = 0; fd < 3; ++fd)
    if (::dup2(slave.get(), fd) < 0)
      return failf_errno("dup2 of the pty to fd {}", fd);
  return {};
}

namespace {

void copy_window_size(int from, int to) {
  struct winsize ws {};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0)
    ::ioctl(to, TIOCSWINSZ, &ws);
}

bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0)
    return n < 0 && (errno == EINTR || errno == EAGAIN);
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    off += w;
  }
  return true;
}

} // namespace

bool relay_terminal(int master, int signal_fd, pid_t init_pid, int *exit_status) {
  struct termios saved {};
  bool raw = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
    copy_window_size(STDIN_FILENO, master);
  }
  struct pollfd pfd[3] = {{master, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}, {signal_fd, POLLIN, 0}};
  bool exited = false;
  for (;;) {
    if (::poll(pfd, 3, exited ? 100 : -1) <= 0) {
      if (exited)
        break; // nothing more to drain
      continue;
    }
    if (pfd[0].revents & POLLIN) {
      if (!pump(master, STDOUT_FILENO))
        break;
    } else if (pfd[0].revents & (POLLHUP | POLLERR)) {
      break;
    }
    if (pfd[1].revents & POLLIN) {
      if (!pump(STDIN_FILENO, master))
        pfd[1].fd = -1;
    } else if (pfd[1].revents) {
      pfd[1].fd = -1;
    }
    if (pfd[2].revents & POLLIN) {
      struct signalfd_siginfo si {};
      if (::read(signal_fd, &si, sizeof si) != sizeof si)
        continue;
      if (si.ssi_signo == SIGWINCH && raw) {
        copy_window_size(STDIN_FILENO, master);
      } else if (si.ssi_signo == SIGCHLD) {
        int st = 0;
        pid_t r;
        while ((r = ::waitpid(-1, &st, WNOHANG)) > 0)
          if (r == init_pid) {
            *exit_status = st;
            exited = true;
          }
      } else {
        ::kill(init_pid, static_cast<int>(si.ssi_signo));
      }
    }
  }
  if (raw)
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  return exited;
}

} // namespace bulkhead::runtime
