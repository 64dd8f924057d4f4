// bulkheadctl exec -t on a real terminal: the container's pty starts with the caller's window
// size and follows it when the terminal is resized mid-session.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "daemon_fixture.hpp"

namespace bh_test {

using DaemonExecTtyTest = DaemonTest;

namespace {

// Reads from fd into out until pred(out) holds or the deadline passes.
bool read_until(int fd, std::string &out, const std::function<bool(const std::string &)> &pred,
                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred(out)) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    struct pollfd p {
      fd, POLLIN, 0
    };
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0)
      return pred(out);
    out.append(buf, static_cast<size_t>(n));
  }
  return true;
}

} // namespace

TEST_F(DaemonExecTtyTest, WindowSizeFollowsTheTerminal) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "t1", "--template", "busybox", "--start"}).ok());

  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::string slave_path = ::ptsname(master);
  struct winsize ws {};
  ws.ws_row = 24;
  ws.ws_col = 80;
  ASSERT_EQ(::ioctl(master, TIOCSWINSZ, &ws), 0);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The terminal becomes the controlling tty of a new session, so a resize sends SIGWINCH to
    // bulkheadctl as it would in a real shell.
    ::setsid();
    int slave = ::open(slave_path.c_str(), O_RDWR);
    if (slave < 0 || ::ioctl(slave, TIOCSCTTY, 0) < 0)
      ::_exit(126);
    for (int fd = 0; fd < 3; ++fd)
      ::dup2(slave, fd);
    std::string ctl = bulkheadctl_path();
    ::execl(ctl.c_str(), ctl.c_str(), "--socket", socket_.c_str(), "exec", "-t", "t1", "--", "sh", "-c",
            "stty size; read line; stty size; exit 3", static_cast<char *>(nullptr));
    ::_exit(127);
  }
  std::string out;
  EXPECT_TRUE(read_until(
      master, out, [](const std::string &s) { return contains(s, "24 80"); }, 30s))
      << out;
  ws.ws_row = 33;
  ws.ws_col = 111;
  ASSERT_EQ(::ioctl(master, TIOCSWINSZ, &ws), 0);
  // The resize travels client -> monitor -> worker asynchronously; the line sent next must not
  // overtake it, so give it a moment (a lost resize would still fail below).
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(::write(master, "go\r", 3), 3);
  EXPECT_TRUE(read_until(
      master, out, [](const std::string &s) { return contains(s, "33 111"); }, 30s))
      << out;
  // Drain the terminal while bulkheadctl ends (once the container side closed, reads fail at once,
  // so the wait is paced by the clock, not by the reads).
  int status = 0;
  bool exited = false;
  for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
    if (::waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      break;
    }
    std::string drain;
    read_until(
        master, drain, [](const std::string &) { return false; }, 50ms);
    std::this_thread::sleep_for(20ms);
  }
  if (!exited) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  ::close(master);
  ASSERT_TRUE(exited) << "bulkheadctl exec -t did not end within 30 s";
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 3) << out;
  ASSERT_TRUE(ctl({"destroy", "t1", "--force"}).ok());
}

} // namespace bh_test
