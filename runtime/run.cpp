// `run`: create + start, then (in the foreground) relay signals to init, reap it, delete the
// container and return its exit status.
#include <csignal>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/runtime.hpp"
#include "runtime/container.hpp"

namespace bulkhead {

namespace {

constexpr int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

} // namespace

Result<int> Runtime::run(const std::string &id, const CreateOptions &create, const RunOptions &run) {
  if (!run.detach && !run.no_subreaper) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // Blocked before init exists so no signal is lost between start and the relay loop; init and
  // hooks reset their masks before exec.
  sigset_t relay, old;
  sigemptyset(&relay);
  for (int s : kForwarded) sigaddset(&relay, s);
  sigaddset(&relay, SIGCHLD);
  if (!run.detach) ::sigprocmask(SIG_BLOCK, &relay, &old);

  auto created = runtime::create_container(options_, id, create);
  if (!created) return tl::unexpected(created.error());
  pid_t pid = created->pid;
  if (auto started = runtime::start_container(options_, id); !started) {
    (void)runtime::delete_container(options_, id, true);
    if (!run.detach) ::waitpid(pid, nullptr, WNOHANG);
    return tl::unexpected(started.error());
  }
  if (run.detach) return 0;

  UniqueFd sfd(::signalfd(-1, &relay, SFD_CLOEXEC));
  if (!sfd) return failf_errno("signalfd");
  int status = 0;
  for (;;) {
    // As a subreaper we also reap orphans re-parented from the container.
    int st = 0;
    pid_t r = ::waitpid(-1, &st, WNOHANG);
    if (r == pid) {
      status = st;
      break;
    }
    if (r > 0) continue;
    if (r < 0 && errno == ECHILD) break;
    struct signalfd_siginfo si {};
    ssize_t n = ::read(sfd.get(), &si, sizeof si);
    if (n != sizeof si) continue;
    if (si.ssi_signo != SIGCHLD) ::kill(pid, static_cast<int>(si.ssi_signo));
  }
  auto removed = runtime::delete_container(options_, id, true);
  if (!removed) runtime::log_warning(options_, removed.error().text());
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return exit_code(status);
}

} // namespace bulkhead
