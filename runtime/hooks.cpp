#include "runtime/hooks.hpp"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::runtime {

namespace {

// The hook's stdout and stderr, kept (bounded) for the error message; one line, like every error.
std::string one_line(std::string out) {
  for (char &c : out)
    if (c == '\n' || c == '\r' || c == '\t')
      c = ' ';
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

} // namespace

Status run_hook(const oci::Hook &hook, const std::string &state_json, const char *phase,
                const std::string &cwd) {
  auto label = fmt::format("{} hook {}", phase, hook.path);
  // Prepared before fork: the child only dup2s and execs.
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char *> argv, envp;
  for (auto &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = hook.env;
  for (auto &e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) < 0)
    return failf_errno("{}: pipe", label);
  UniqueFd in_rd(in[0]), in_wr(in[1]);
  if (::pipe2(out, O_CLOEXEC) < 0)
    return failf_errno("{}: pipe", label);
  UniqueFd out_rd(out[0]), out_wr(out[1]);

  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("{}: fork", label);
  if (pid == 0) {
    ::dup2(in_rd.get(), STDIN_FILENO);
    ::dup2(out_wr.get(), STDOUT_FILENO);
    ::dup2(out_wr.get(), STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) {
      auto msg = fmt::format("entering {}: {}\n", cwd, std::strerror(errno));
      (void)::write(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(126);
    }
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  in_rd.reset();
  out_wr.reset();
  // A hook that does not read stdin must not fail us with SIGPIPE/EPIPE; the state JSON is far
  // below the pipe's capacity, so this write never blocks.
  ::signal(SIGPIPE, SIG_IGN);
  (void)write_all(in_wr.get(), state_json, label);
  in_wr.reset();

  std::string output;
  bool timed_out = false;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  int timeout_ms = hook.timeout ? *hook.timeout * 1000 : -1;
  struct pollfd pfd[2] = {{out_rd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
  bool exited = !pidfd;
  // Until the hook exits: its output pipe may stay open in a daemon it left behind.
  while (!exited) {
    int r = ::poll(pfd, 2, timeout_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (pfd[0].revents) {
      char buf[1024];
      ssize_t n = ::read(out_rd.get(), buf, sizeof buf);
      if (n > 0 && output.size() < 4096)
        output.append(buf, static_cast<size_t>(n));
      if (n <= 0)
        pfd[0].fd = -1;
    }
    if (pfd[1].revents)
      exited = true;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return failf_errno("{}: wait", label);
  if (timed_out)
    return failf("{}: timed out after {}s", label, *hook.timeout);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return {};
  // Whatever is already in the pipe explains the failure.
  char buf[1024];
  ssize_t n;
  ::fcntl(out_rd.get(), F_SETFL, O_NONBLOCK);
  while (output.size() < 4096 && (n = ::read(out_rd.get(), buf, sizeof buf)) > 0)
    output.append(buf, static_cast<size_t>(n));
  std::string why;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    why = "exit status 127 (missing or not executable?)";
  else if (WIFEXITED(status))
    why = fmt::format("exit status {}", WEXITSTATUS(status));
  else
    why = fmt::format("killed by signal {}", WTERMSIG(status));
  output = one_line(std::move(output));
  if (output.empty())
    return failf("{}: {}", label, why);
  return failf("{}: {}: {}", label, why, output);
}

Status run_hooks(const std::vector<oci::Hook> &hooks, const std::string &state_json, const char *phase,
                 const std::string &cwd) {
  for (const auto &h : hooks)
    BH_CHECK(run_hook(h, state_json, phase, cwd));
  return {};
}

} // namespace bulkhead::runtime
