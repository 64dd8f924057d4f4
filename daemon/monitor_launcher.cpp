#include "daemon/monitor_launcher.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

extern char **environ;

namespace bulkhead::daemon {

namespace {

// Reads one '\n'-terminated line, waiting at most until `deadline`.
Result<std::string> read_line(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string line;
  char buf[4096];
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return fail("the monitor did not answer in time", ETIMEDOUT);
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail_errno("waiting for the monitor");
    if (n == 0)
      continue;
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return fail_errno("reading the monitor's reply");
    if (r == 0)
      return fail("the monitor exited without a reply", EPIPE);
    line.append(buf, static_cast<size_t>(r));
    if (auto nl = line.find('\n'); nl != std::string::npos)
      return line.substr(0, nl);
  }
}

} // namespace

Result<MonitorStarted> launch_monitor(const std::string &binary, const nlohmann::json &request,
                                      int timeout_ms, const std::string &stderr_path,
                                      const std::function<Status(pid_t init_pid)> &on_created) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return fail_errno("socketpair for the monitor");
  UniqueFd ours(sv[0]), theirs(sv[1]);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (stderr_path.empty())
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW,
                                     0600);
  posix_spawn_file_actions_adddup2(&fa, theirs.get(), 3); // dup2 clears CLOEXEC on fd 3
  // Nothing else of the daemon's (API socket, other containers' pidfds) leaks into the monitor.
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char *argv[] = {const_cast<char *>(binary.c_str()), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, binary.c_str(), &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return fail("starting the monitor " + binary, rc);
  theirs.reset();

  auto kill_monitor = [pid] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  };
  if (auto w = write_all(ours.get(), request.dump() + "\n", "the monitor's request"); !w) {
    kill_monitor();
    return tl::unexpected(w.error());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto line = read_line(ours.get(), deadline);
  if (!line) {
    kill_monitor();
    return tl::unexpected(line.error());
  }
  nlohmann::json reply;
  try {
    reply = nlohmann::json::parse(*line);
  } catch (const nlohmann::json::exception &) {
    kill_monitor();
    return fail("the monitor answered something that is not JSON: " + line->substr(0, 200), EPROTO);
  }
  std::optional<Error> setup_error;
  if (reply.is_object() && reply.value("created", false)) {
    Status set = on_created ? on_created(reply.value("pid", 0)) : Status{};
    if (!set)
      setup_error = set.error();
    nlohmann::json answer =
        set ? nlohmann::json{{"start", true}} : nlohmann::json{{"abort", set.error().text()}};
    if (auto w = write_all(ours.get(), answer.dump() + "\n", "the monitor's start line"); !w) {
      kill_monitor();
      return tl::unexpected(w.error());
    }
    line = read_line(ours.get(), deadline);
    if (!line) {
      kill_monitor();
      return tl::unexpected(line.error());
    }
    try {
      reply = nlohmann::json::parse(*line);
    } catch (const nlohmann::json::exception &) {
      kill_monitor();
      return fail("the monitor answered something that is not JSON: " + line->substr(0, 200), EPROTO);
    }
  }
  if (setup_error) {
    ::waitpid(pid, nullptr, 0);
    return tl::unexpected(*setup_error);
  }
  if (!reply.value("ok", false)) {
    // The monitor undid its work and exits; reap it so no zombie stays behind.
    ::waitpid(pid, nullptr, 0);
    return fail(reply.value("error", std::string("the monitor failed without a message")));
  }
  MonitorStarted started;
  started.monitor_pid = pid;
  started.init_pid = reply.value("pid", 0);
  started.init_start_time = reply.value("init_start_time", uint64_t{0});
  return started;
}

} // namespace bulkhead::daemon
