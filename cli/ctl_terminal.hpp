// The local terminal for exec -t and console: raw mode for the session, and the original mode put
// back on every way out (return, exception, SIGTERM/SIGHUP/SIGINT/SIGQUIT), so a user's shell is
// never left without echo.
#pragma once

#include <termios.h>

namespace bulkhead::ctl {

class RawTerminal {
public:
  // Does nothing when fd is not a terminal (active() is then false).
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal &) = delete;
  RawTerminal &operator=(const RawTerminal &) = delete;
  bool active() const { return active_; }
  void restore();

private:
  int fd_;
  bool active_ = false;
};

// The window size of the first terminal among stdin, stdout, stderr; 24x80 when none is one.
void window_size(unsigned short &rows, unsigned short &cols);

} // namespace bulkhead::ctl
