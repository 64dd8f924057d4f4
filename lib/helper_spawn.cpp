// posix_spawn of the helper, three pipes, and a poll loop that reads stdout and stderr together (a
// helper blocked writing one while we read the other would deadlock).
//
// Handshake between libbulkhead (caller, any thread) and its helper process:
//
// | step | libbulkhead                                   | helper (`bulkhead CMD ...`)                    |
// |------|-----------------------------------------------|------------------------------------------------|
// | step | libbulkhead (caller, any thread)               | helper (`bulkhead --log /dev/fd/3 CMD ...`)     |
// |------|------------------------------------------------|-------------------------------------------------|
// | 1    | pipe2(O_CLOEXEC) for stdin (when input), fd 3  | starts with fds 0-3 only (closefrom 4), default |
// |      | (log) and, Capture, stdout/stderr; posix_spawn | dispositions, empty signal mask; stdin is the   |
// |      | with dup2 onto 0-3, /dev/null otherwise        | input pipe or /dev/null                         |
// | 2    | writes `input` to fd 0, closes it (EOF)        | reads stdin only when told (`update -r -`)      |
// | 3    | polls stdout, stderr, fd 3 until all at EOF    | works single-threaded (clone included); result  |
// |      |                                                | JSON / event lines on stdout, JSON log lines    |
// |      |                                                | (`{"level":"error","msg":...}`) on fd 3; exits  |
// | 3'   | on_line returned false: closes stdout, SIGTERM | dies (SIGTERM or EPIPE); `events` only reads    |
// | 4    | waitpid(pid), by pid: the caller's other       | exit 0 = success; else the last error log line  |
// |      | children are never reaped                      | is the message (run/exec: the process's status) |
// A container left running (create, run --detach) inherits stdio (Null here) but not fd 3: init
// and exec close every fd from 3 on, so the log pipe reaches EOF when the helper exits.
#include "lib/helper_spawn.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/unique_fd.hpp"

extern char **environ;

namespace bulkhead::abi {
namespace {

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return fail_errno("pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// RAII for posix_spawn's two attribute objects.
struct SpawnAttrs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnAttrs() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttrs(const SpawnAttrs &) = delete;
  SpawnAttrs &operator=(const SpawnAttrs &) = delete;
};

Result<int> wait_pid(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return failf_errno("waitpid {}", pid);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
    s.pop_back();
  return s;
}

} // namespace

Result<HelperResult> run_helper(const std::vector<std::string> &argv, std::string_view input, Stdio stdio,
                                const std::function<bool(std::string_view)> &on_line) {
  auto log = BH_TRY(make_pipe());
  Pipe in, out, err;
  if (!input.empty())
    in = BH_TRY(make_pipe());
  if (stdio == Stdio::Capture) {
    out = BH_TRY(make_pipe());
    err = BH_TRY(make_pipe());
  }

  SpawnAttrs sa;
  if (in.read)
    posix_spawn_file_actions_adddup2(&sa.actions, in.read.get(), 0);
  else
    posix_spawn_file_actions_addopen(&sa.actions, 0, "/dev/null", O_RDONLY, 0);
  if (stdio == Stdio::Capture) {
    posix_spawn_file_actions_adddup2(&sa.actions, out.write.get(), 1);
    posix_spawn_file_actions_adddup2(&sa.actions, err.write.get(), 2);
  } else if (stdio == Stdio::Null) {
    posix_spawn_file_actions_addopen(&sa.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&sa.actions, 2, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&sa.actions, log.write.get(), 3);
  // The caller's other fds (a multithreaded program may open some without O_CLOEXEC) stay out.
  posix_spawn_file_actions_addclosefrom_np(&sa.actions, 4);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&sa.attr, &empty);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char *> cargv;
  for (const auto &a : argv)
    cargv.push_back(const_cast<char *>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &sa.actions, &sa.attr, cargv.data(), environ);
  if (rc != 0)
    return fail(fmt::format("posix_spawn {}", argv[0]), rc);
  in.read.reset();
  out.write.reset();
  err.write.reset();
  log.write.reset();

  // Inputs are small (a resources document) and fit in the pipe buffer. A helper that exited early
  // makes the write raise SIGPIPE at this thread: it is blocked here and consumed, so the caller's
  // disposition never sees it, and the helper's exit status reports the failure.
  if (in.write) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    (void)!write(in.write.get(), input.data(), input.size());
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    in.write.reset();
  }

  HelperResult result;
  std::string line_buf;
  bool stopped = false;
  pollfd fds[3] = {{out.read ? out.read.get() : -1, POLLIN, 0},
                   {err.read ? err.read.get() : -1, POLLIN, 0},
                   {log.read.get(), POLLIN, 0}};
  std::string *sinks[3] = {&result.out, &result.err, &result.log};
  int open_fds = 0;
  for (auto &p : fds)
    open_fds += p.fd >= 0;
  char buf[8192];
  while (open_fds > 0) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 3; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (i != 0 || !on_line) {
        sinks[i]->append(buf, n);
        continue;
      }
      line_buf.append(buf, n);
      size_t nl;
      while (!stopped && (nl = line_buf.find('\n')) != std::string::npos) {
        std::string line = line_buf.substr(0, nl);
        line_buf.erase(0, nl + 1);
        if (!on_line(line))
          stopped = true;
      }
      if (stopped) {
        kill(pid, SIGTERM);
        fds[0].fd = -1;
        --open_fds;
        out.read.reset();
      }
    }
  }
  if (on_line && !stopped && !line_buf.empty())
    on_line(line_buf);
  result.exit_status = BH_TRY(wait_pid(pid));
  if (stopped && result.exit_status == 128 + SIGTERM)
    result.exit_status = 0;
  result.err = trim(std::move(result.err));
  return result;
}

} // namespace bulkhead::abi
