// `run`: create + start, then (in the foreground) relay signals to init, reap it, delete the
// container and return its exit status.
#include <csignal>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/runtime.hpp"
#include "runtime/console.hpp"
#include "runtime/container.hpp"
#include "runtime/foreground.hpp"

namespace bulkhead {

Result<int> Runtime::run(const std::string &id, const CreateOptions &create, const RunOptions &run) {
  if (!run.detach && !run.no_subreaper)
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // Blocked before init exists so no signal is lost between start and the relay loop; init and
  // hooks reset their masks before exec.
  sigset_t relay = runtime::foreground_signals(), old;
  if (!run.detach)
    ::sigprocmask(SIG_BLOCK, &relay, &old);

  // A foreground run without --console-socket relays a terminal itself: init sends the pty
  // master to this end of a socketpair.
  UniqueFd console_ours, console_theirs;
  if (!run.detach && create.console_socket.empty()) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
      return failf_errno("console socketpair");
    console_ours.reset(sv[0]);
    console_theirs.reset(sv[1]);
  }
  auto created = runtime::create_container(options_, id, create, console_theirs.get());
  console_theirs.reset();
  if (!created)
    return tl::unexpected(created.error());
  pid_t pid = created->pid;
  UniqueFd master;
  if (created->terminal && console_ours) {
    auto received = receive_fd(console_ours.get(), "the pty master");
    if (!received) {
      (void)runtime::delete_container(options_, id, true);
      return tl::unexpected(received.error());
    }
    master = std::move(*received);
  }
  if (auto started = runtime::start_container(options_, id); !started) {
    (void)runtime::delete_container(options_, id, true);
    if (!run.detach)
      ::waitpid(pid, nullptr, WNOHANG);
    return tl::unexpected(started.error());
  }
  if (run.detach)
    return 0;

  auto status = runtime::wait_foreground(pid, std::move(master), relay);
  if (!status)
    return tl::unexpected(status.error());
  runtime::log_debug(options_, fmt::format("run {}: init (pid {}) exited with status {}{}", id, pid,
                                           runtime::exit_code(*status), run.keep ? "; kept (--keep)" : ""));
  if (!run.keep) {
    auto removed = runtime::delete_container(options_, id, true);
    if (!removed)
      runtime::log_warning(options_, removed.error().text());
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return runtime::exit_code(*status);
}

} // namespace bulkhead
