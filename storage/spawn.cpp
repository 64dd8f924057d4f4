#include "storage/spawn.hpp"

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bulkhead::storage {

namespace {

std::vector<char *> c_strings(const std::vector<std::string> &v) {
  std::vector<char *> out;
  for (const auto &s : v)
    out.push_back(const_cast<char *>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

struct SpawnAttr {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttr() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttr() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

} // namespace

Result<Child> spawn_with_output(const std::vector<std::string> &argv, const std::vector<std::string> &env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0)
    return failf_errno("creating a pipe for {}", argv[0]);
  UniqueFd rd(fds[0]), wr(fds[1]);

  SpawnAttr sa;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setsigdefault(&sa.attr, &defaults);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_addopen(&sa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&sa.actions, wr.get(), 1); // dup2 clears O_CLOEXEC on the copy
  posix_spawn_file_actions_adddup2(&sa.actions, wr.get(), 2);

  auto args = c_strings(argv);
  auto envp = c_strings(env);
  pid_t pid = -1;
  int err = ::posix_spawnp(&pid, argv[0].c_str(), &sa.actions, &sa.attr, args.data(), envp.data());
  if (err != 0)
    return fail(fmt::format("starting {}", argv[0]), err);
  return Child{pid, std::move(rd)};
}

Result<int> wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return failf_errno("waiting for process {}", pid);
  }
  return status;
}

} // namespace bulkhead::storage
