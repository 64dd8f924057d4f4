#include "runtime/foreground.hpp"

#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/console.hpp"

namespace bulkhead::runtime {

sigset_t foreground_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGCHLD})
    sigaddset(&set, s);
  return set;
}

int exit_code(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

Result<int> wait_foreground(pid_t pid, UniqueFd master, const sigset_t &signals) {
  UniqueFd sfd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!sfd)
    return failf_errno("signalfd");
  int status = 0;
  bool reaped = false;
  if (master) {
    reaped = relay_terminal(master.get(), sfd.get(), pid, &status);
    master.reset();
  }
  while (!reaped) {
    // As a subreaper we also reap orphans re-parented from the container.
    int st = 0;
    pid_t r = ::waitpid(-1, &st, WNOHANG);
    if (r == pid) {
      status = st;
      break;
    }
    if (r > 0)
      continue;
    if (r < 0 && errno == ECHILD)
      return failf("pid {} is not our child", pid);
    struct signalfd_siginfo si {};
    if (::read(sfd.get(), &si, sizeof si) != sizeof si)
      continue;
    if (si.ssi_signo != SIGCHLD)
      ::kill(pid, static_cast<int>(si.ssi_signo));
  }
  return status;
}

} // namespace bulkhead::runtime
