#include "daemon/monitor_exec.hpp"

#include <csignal>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>

#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"
#include "daemon/monitor_io.hpp"
#include "rootfs/safe_path.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
};

std::optional<uint32_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  uint64_t v = std::stoull(std::string(s));
  if (v > UINT32_MAX)
    return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    auto c = line.find(':', pos);
    out.push_back(line.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos));
    if (c == std::string_view::npos)
      return out;
    pos = c + 1;
  }
}

// Lines of a file of the container, or "" when it has none.
std::string container_file(int root_fd, const char *path) {
  auto fd = rootfs::open_in_root(root_fd, path, O_RDONLY);
  if (!fd)
    return {};
  return read_fd(fd->get(), path).value_or("");
}

// The first passwd entry whose name (by_name) or uid matches.
std::optional<PasswdEntry> find_passwd(const std::string &text, std::string_view name,
                                       std::optional<uint32_t> uid) {
  std::string_view rest(text);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto f = fields(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (f.size() < 7)
      continue;
    auto u = parse_number(f[2]), g = parse_number(f[3]);
    if (!u || !g)
      continue;
    if ((uid && *u == *uid) || (!uid && f[0] == name))
      return PasswdEntry{std::string(f[0]), *u, *g, std::string(f[5])};
  }
  return std::nullopt;
}

std::optional<uint32_t> find_group(const std::string &text, std::string_view name) {
  std::string_view rest(text);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto f = fields(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (f.size() >= 3 && f[0] == name)
      if (auto g = parse_number(f[2]))
        return g;
  }
  return std::nullopt;
}

void set_env(json &env, const std::string &kv) {
  auto key = kv.substr(0, kv.find('=') + 1);
  for (auto &e : env)
    if (e.is_string() && e.get<std::string>().rfind(key, 0) == 0) {
      e = kv;
      return;
    }
  env.push_back(kv);
}

bool has_env(const json &env, const std::string &key) {
  for (const auto &e : env)
    if (e.is_string() && e.get<std::string>().rfind(key + "=", 0) == 0)
      return true;
  return false;
}

} // namespace

Result<json> exec_process(const json &container_process, const ExecRequest &r, const std::string &rootfs) {
  json p = container_process;
  p["args"] = r.args;
  p["terminal"] = r.tty;
  p.erase("consoleSize");
  if (r.tty && r.rows && r.cols)
    p["consoleSize"] = json{{"height", r.rows}, {"width", r.cols}};
  p["cwd"] = r.cwd.empty() ? "/" : r.cwd;
  if (!p.contains("env") || !p["env"].is_array())
    p["env"] = json::array();
  for (const auto &kv : r.env)
    set_env(p["env"], kv);

  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return failf_errno("opening the container's root {}", rootfs);
  std::string passwd = container_file(root.get(), "/etc/passwd");
  std::optional<PasswdEntry> entry;
  uint32_t uid = 0, gid = 0;
  if (!r.user.empty()) {
    auto colon = r.user.find(':');
    std::string u = r.user.substr(0, colon);
    if (auto n = parse_number(u)) {
      uid = *n;
      entry = find_passwd(passwd, "", uid);
    } else {
      entry = find_passwd(passwd, u, std::nullopt);
      if (!entry)
        return failf("exec: user {:?} is not in the container's /etc/passwd", u);
      uid = entry->uid;
    }
    gid = entry ? entry->gid : 0;
    if (colon != std::string::npos) {
      std::string g = r.user.substr(colon + 1);
      if (auto n = parse_number(g)) {
        gid = *n;
      } else {
        auto found = find_group(container_file(root.get(), "/etc/group"), g);
        if (!found)
          return failf("exec: group {:?} is not in the container's /etc/group", g);
        gid = *found;
      }
    }
    p["user"] = json{{"uid", uid}, {"gid", gid}};
  } else {
    entry = find_passwd(passwd, "", 0);
  }
  if (!has_env(p["env"], "HOME"))
    set_env(p["env"], "HOME=" + (entry && !entry->home.empty() ? entry->home : std::string("/")));
  return p;
}

namespace {

// Worker body; returns the reply line.
json run_exec(const WatchState &w, const ExecRequest &r) {
  auto fail_reply = [](const Error &e) { return json{{"error", e.text()}}; };
  auto config = read_file(w.bundle + "/config.json");
  if (!config)
    return fail_reply(config.error());
  json spec = json::parse(*config, nullptr, false);
  if (spec.is_discarded() || !spec.contains("process"))
    return json{{"error", w.bundle + "/config.json: not a spec with a process"}};
  auto process = exec_process(spec["process"], r, w.rootfs);
  if (!process)
    return fail_reply(process.error());
  UniqueFd memfd(static_cast<int>(::syscall(SYS_memfd_create, "exec-process.json", MFD_CLOEXEC)));
  if (!memfd)
    return fail_reply(Error{errno, "memfd_create for the exec process"});
  if (auto wr = write_all(memfd.get(), process->dump(), "the exec process"); !wr)
    return fail_reply(wr.error());
  ExecOptions o;
  o.process_file = fmt::format("/proc/self/fd/{}", memfd.get());
  RuntimeOptions ro;
  ro.root = w.oci_root;
  ro.log = [](LogLevel level, const std::string &m) {
    if (level != LogLevel::Debug)
      (void)write_all(STDERR_FILENO, m + "\n", "stderr");
  };
  auto code = Runtime(ro).exec(w.name, o);
  if (!code)
    return fail_reply(code.error());
  return json{{"exit", *code}};
}

} // namespace

Result<pid_t> spawn_exec_worker(const WatchState &w, const ExecRequest &r, int conn,
                                const std::vector<UniqueFd> &stdio) {
  if (stdio.size() != 3)
    return failf("exec: expected 3 file descriptors (stdin, stdout, stderr) with the request, got {}",
                 stdio.size());
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork of the exec worker");
  if (pid > 0)
    return pid;

  // Worker. Stdio onto 0-2 and the connection onto 3, through high numbers so no dup2 clobbers
  // a source; then nothing else of the monitor's (pty, listener, other clients) stays open.
  int high[4];
  for (int i = 0; i < 3; ++i)
    high[i] = ::fcntl(stdio[i].get(), F_DUPFD_CLOEXEC, 64);
  high[3] = ::fcntl(conn, F_DUPFD_CLOEXEC, 64);
  for (int i = 0; i < 4; ++i)
    if (high[i] < 0 || ::dup2(high[i], i) < 0)
      ::_exit(127);
  ::syscall(SYS_close_range, 4, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  // SIGPIPE stays ignored: a client that goes away ends the relay with EPIPE instead of killing us.
  json reply = run_exec(w, r);
  (void)send_line(3, reply.dump());
  ::_exit(0);
}

} // namespace bulkhead::daemon
