#include "runtime/hooks.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::runtime {

Status run_hook(const oci::Hook &hook, const std::string &state_json, const char *phase) {
  auto label = fmt::format("{} hook {}", phase, hook.path);
  // Prepared before fork: the child only dup2s and execs.
  std::vector<char *> argv;
  std::string path_copy = hook.path;
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char *> envp;
  for (auto &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return failf_errno("{}: pipe", label);
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);

  pid_t pid = ::fork();
  if (pid < 0) return failf_errno("{}: fork", label);
  if (pid == 0) {
    ::dup2(rd.get(), STDIN_FILENO);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::execve(path_copy.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  rd.reset();
  // A hook that does not read stdin must not fail us with SIGPIPE/EPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  (void)write_all(wr.get(), state_json, label);
  wr.reset();

  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  int timeout_ms = hook.timeout ? *hook.timeout * 1000 : -1;
  if (pidfd) {
    struct pollfd pfd {
      pidfd.get(), POLLIN, 0
    };
    int r;
    while ((r = ::poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (r == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return failf("{}: timed out after {}s", label, *hook.timeout);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return failf_errno("{}: wait", label);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return failf("{}: failed to run (missing or not executable?) (exit status 127)", label);
  if (WIFEXITED(status)) return failf("{}: exit status {}", label, WEXITSTATUS(status));
  return failf("{}: killed by signal {}", label, WTERMSIG(status));
}

Status run_hooks(const std::vector<oci::Hook> &hooks, const std::string &state_json, const char *phase) {
  for (const auto &h : hooks) BH_CHECK(run_hook(h, state_json, phase));
  return {};
}

} // namespace bulkhead::runtime
