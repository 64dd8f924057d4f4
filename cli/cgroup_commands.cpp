#include "cli/cgroup_commands.hpp"

#include <cstdio>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "oci/parse.hpp"

namespace bulkhead::cli {

namespace {

// runc's update flags: name, help. Values are parsed in resources_from_flags.
const std::vector<std::pair<const char *, const char *>> kUpdateFlags = {
    {"memory", "memory limit (bytes, or with a k/m/g suffix; -1 = unlimited)"},
    {"memory-reservation", "memory soft limit (memory.low)"},
    {"memory-swap", "memory+swap limit (-1 = unlimited swap)"},
    {"cpu-quota", "CPU CFS quota in microseconds per period (-1 = unlimited)"},
    {"cpu-period", "CPU CFS period in microseconds"},
    {"cpu-burst", "CPU CFS burst in microseconds"},
    {"cpu-share", "CPU shares (relative weight, converted to cpu.weight)"},
    {"cpu-shares", "same as --cpu-share"},
    {"cpu-rt-period", "realtime period (cgroup v1 only: an error on v2)"},
    {"cpu-rt-runtime", "realtime runtime (cgroup v1 only: an error on v2)"},
    {"cpu-idle", "1 puts the container in SCHED_IDLE (cpu.idle)"},
    {"cpuset-cpus", "CPUs the container may use (0-3, 0,1)"},
    {"cpuset-mems", "memory nodes the container may use"},
    {"pids-limit", "maximum number of processes (-1 = unlimited)"},
    {"blkio-weight", "block IO weight, 10-1000"},
};

int report(const Logger &log, const Error &e) {
  log.error(e.text());
  return 1;
}

Result<std::string> read_resources_text(const std::string &file) {
  if (file == "-")
    return read_fd(STDIN_FILENO, "stdin");
  return read_file(file);
}

// Runs ps(1) with `args` and returns its stdout.
Result<std::string> run_ps(const std::vector<std::string> &args) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork");
  if (pid == 0) {
    ::dup2(wr.get(), STDOUT_FILENO);
    std::vector<char *> argv{const_cast<char *>("ps")};
    for (const auto &a : args)
      argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp("ps", argv.data());
    std::fprintf(stderr, "bulkhead: running ps: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  wr.reset();
  auto out = read_fd(rd.get(), "ps output");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  BH_CHECK(out.map([](const std::string &) {}));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return failf("ps {}: exited with status {}", fmt::join(args, " "), WEXITSTATUS(status));
  return out;
}

} // namespace

void CgroupCommands::add_to(CLI::App &app, std::string_view only) {
  auto want = [only](std::string_view name) { return only.empty() || only == name; };
  if (want("pause")) {
    pause = app.add_subcommand("pause", "freeze every process of a container");
    pause->add_option("id", id, "container id")->required();
  }

  if (want("resume")) {
    resume = app.add_subcommand("resume", "thaw a paused container");
    resume->add_option("id", id, "container id")->required();
  }

  if (want("update")) {
    update = app.add_subcommand("update", "change the resource limits of a container");
    update->add_option("-r,--resources", resources_file, "LinuxResources JSON file (\"-\" reads stdin)");
    for (const auto &[name, help] : kUpdateFlags)
      update->add_option_function<std::string>(
          std::string("--") + name,
          [this, name = std::string(name)](const std::string &v) { update_flags[name] = v; }, help);
    update->add_option("id", id, "container id")->required();
  }

  if (want("ps")) {
    ps = app.add_subcommand("ps", "list the processes of a container (ps options follow the id)");
    ps->add_option("-f,--format", ps_format, "table or json")->check(CLI::IsMember({"table", "json"}));
    ps->add_option("id", id, "container id")->required();
  }

  if (want("events")) {
    events = app.add_subcommand("events", "stream stats and OOM events of a container as JSON lines");
    events->add_flag("--stats", stats_once, "print one stats event and exit");
    events->add_option("--interval", interval, "time between stats events (default 5s)");
    events->add_option("id", id, "container id")->required();
  }
}

std::optional<int> CgroupCommands::dispatch(Runtime &rt, const Logger &log) const {
  if (pause && pause->parsed()) {
    auto r = rt.pause(id);
    return r ? 0 : report(log, r.error());
  }
  if (resume && resume->parsed()) {
    auto r = rt.resume(id);
    return r ? 0 : report(log, r.error());
  }
  if (update && update->parsed()) {
    oci::Resources base;
    if (!resources_file.empty()) {
      auto text = read_resources_text(resources_file);
      if (!text)
        return report(log, text.error());
      auto parsed = oci::parse_resources(*text);
      if (!parsed)
        return report(log, with_context(parsed.error(), "--resources " + resources_file));
      base = std::move(*parsed);
    }
    auto r = resources_from_flags(std::move(base), update_flags);
    if (!r)
      return report(log, r.error());
    auto done = rt.update(id, *r);
    return done ? 0 : report(log, done.error());
  }
  if (ps && ps->parsed()) {
    auto pids = rt.processes(id);
    if (!pids)
      return report(log, pids.error());
    if (ps_format == "json") {
      if (!ps_args.empty())
        return report(log, Error{0, "ps options cannot be used with --format json"});
      fmt::print("{}\n", nlohmann::json(*pids).dump());
      return 0;
    }
    auto out = run_ps(ps_args.empty() ? std::vector<std::string>{"-ef"} : ps_args);
    if (!out)
      return report(log, out.error());
    auto filtered = filter_ps_output(*out, *pids);
    if (!filtered)
      return report(log, filtered.error());
    fmt::print("{}", *filtered);
    return 0;
  }
  if (events && events->parsed()) {
    auto ms = parse_duration_ms(interval);
    if (!ms)
      return report(log, ms.error());
    if (*ms <= 0)
      return report(log, Error{0, "--interval: must be greater than 0"});
    EventsOptions o;
    o.interval_ms = *ms;
    o.once = stats_once;
    auto r = rt.events(id, o, [](const ContainerEvent &e) {
      fmt::print("{}\n", event_to_json(e));
      return std::fflush(stdout) == 0; // a closed pipe ends the stream
    });
    return r ? 0 : report(log, r.error());
  }
  return std::nullopt;
}

} // namespace bulkhead::cli
