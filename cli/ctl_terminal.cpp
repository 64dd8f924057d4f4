#include "cli/ctl_terminal.hpp"

#include <csignal>
#include <initializer_list>
#include <sys/ioctl.h>
#include <unistd.h>

namespace bulkhead::ctl {

namespace {

// One raw session per process; the signal handler only reads these (tcsetattr is
// async-signal-safe).
volatile sig_atomic_t g_saved_valid = 0;
int g_saved_fd = -1;
struct termios g_saved;
struct sigaction g_old_actions[4];
constexpr int kSignals[4] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

void restore_and_reraise(int sig) {
  if (g_saved_valid)
    ::tcsetattr(g_saved_fd, TCSAFLUSH, &g_saved);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

} // namespace

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  struct termios t;
  if (!::isatty(fd) || ::tcgetattr(fd, &t) < 0)
    return;
  g_saved = t;
  g_saved_fd = fd;
  g_saved_valid = 1;
  struct sigaction sa {};
  sa.sa_handler = restore_and_reraise;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 4; i++)
    ::sigaction(kSignals[i], &sa, &g_old_actions[i]);
  ::cfmakeraw(&t);
  if (::tcsetattr(fd, TCSADRAIN, &t) < 0) {
    restore();
    return;
  }
  active_ = true;
}

void RawTerminal::restore() {
  if (!g_saved_valid)
    return;
  ::tcsetattr(fd_, TCSADRAIN, &g_saved);
  g_saved_valid = 0;
  for (int i = 0; i < 4; i++)
    ::sigaction(kSignals[i], &g_old_actions[i], nullptr);
  active_ = false;
}

RawTerminal::~RawTerminal() { restore(); }

void window_size(unsigned short &rows, unsigned short &cols) {
  rows = 24;
  cols = 80;
  struct winsize ws {};
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
      rows = ws.ws_row;
      cols = ws.ws_col;
      return;
    }
}

} // namespace bulkhead::ctl
