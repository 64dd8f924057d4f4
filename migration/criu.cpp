// libcriu calls: each request gets its own criu_opts, one `criu swrk` child answers it and exits.
// libcriu forks that child itself (or CriuService started it before), so these calls belong to a
// single-threaded process (the `bulkhead` CLI, a monitor's worker), never to bulkheadd.
#include "migration/criu.hpp"
#include "migration/criu_lock_table.hpp"
#include "migration/criu_netns.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <utility>

extern "C" {
#include <criu/criu.h>
}

#include "bulkhead/io.hpp"

extern char **environ;

namespace bulkhead::migration {

namespace {

struct OptsDeleter {
  void operator()(criu_opts *o) const { criu_local_free_opts(o); }
};
using Opts = std::unique_ptr<criu_opts, OptsDeleter>;

// libcriu's notify callback takes no user pointer; one request runs at a time in this process.
struct NotifyContext {
  int status_fd = -1;
  bool pts_master = false;
  const std::function<Status(pid_t)> *setup_namespaces = nullptr;
  std::optional<Error> setup_error;
  // A restore: CRIU's lock tables in the images (criu_lock_table.hpp), the restored root's pid
  // (from "setup-namespaces" or "post-restore", the notifications that carry it), and whether
  // removing them failed (CRIU ignores its unlock notification's answer).
  std::vector<std::string> lock_tables;
  pid_t root_pid = 0;
  std::optional<Error> unlock_error;
};
NotifyContext *g_notify = nullptr;

// CRIU's lock tables the images brought back, removed from the restored tree's namespace.
Status remove_lock_tables(pid_t root, const std::vector<std::string> &tables) {
  if (root <= 0)
    return fail("removing CRIU's network lock: CRIU's unlock came before the restored root's pid");
  std::string path = fmt::format("/proc/{}/ns/net", root);
  UniqueFd netns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns)
    return failf_errno("removing CRIU's network lock: opening {}", path);
  return context(delete_inet_tables(netns.get(), tables),
                 fmt::format("removing CRIU's network lock from the namespace of pid {}", root));
}

int on_notify(char *action, criu_notify_arg_t na) {
  if (!g_notify)
    return 0;
  std::string_view a(action);
  if ((a == "setup-namespaces" || a == "post-restore") && criu_notify_pid(na) > 0)
    g_notify->root_pid = criu_notify_pid(na);
  if (a == "network-unlock" && !g_notify->lock_tables.empty()) {
    // The tree is still stopped: its first packet after this goes through.
    auto gone = remove_lock_tables(g_notify->root_pid, g_notify->lock_tables);
    if (!gone) {
      g_notify->unlock_error = gone.error();
      return -1;
    }
  } else if (a == "setup-namespaces" && g_notify->setup_namespaces && *g_notify->setup_namespaces) {
    auto done = (*g_notify->setup_namespaces)(criu_notify_pid(na));
    if (!done) {
      g_notify->setup_error = done.error();
      return -1; // CRIU aborts the restore and kills what it made
    }
  } else if (a == "status-ready" && g_notify->status_fd >= 0) {
    // runc's protocol for --status-fd: one '\0' once the lazy-pages server is ready.
    char zero = 0;
    (void)!::write(g_notify->status_fd, &zero, 1);
  } else if (a == "orphan-pts-master") {
    g_notify->pts_master = true;
  }
  return 0;
}

// `criu swrk` inherits our stderr, and prints there what goes wrong before it has a log file (the
// kernel feature detection). Those lines are quoted in our error instead (kernel_check), so the
// caller sees one readable message.
class QuietStderr {
public:
  QuietStderr() : saved_(::fcntl(2, F_DUPFD_CLOEXEC, 3)) {
    UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (saved_ && null)
      ::dup2(null.get(), 2);
  }
  ~QuietStderr() {
    if (saved_)
      ::dup2(saved_.get(), 2);
  }
  QuietStderr(const QuietStderr &) = delete;
  QuietStderr &operator=(const QuietStderr &) = delete;

private:
  UniqueFd saved_;
};

Result<Opts> new_opts(const std::string &binary) {
  criu_opts *raw = nullptr;
  if (criu_local_init_opts(&raw) < 0 || !raw)
    return fail("libcriu: criu_local_init_opts failed (out of memory)", ENOMEM);
  Opts o(raw);
  if (criu_local_set_service_binary(o.get(), binary.c_str()) < 0)
    return fail("libcriu: setting the service binary", ENOMEM);
  return o;
}

criu_cg_mode to_criu(CgroupMode m) {
  switch (m) {
  case CgroupMode::Full:
    return CRIU_CG_MODE_FULL;
  case CgroupMode::Strict:
    return CRIU_CG_MODE_STRICT;
  case CgroupMode::Ignore:
    return CRIU_CG_MODE_IGNORE;
  case CgroupMode::Soft:
    break;
  }
  return CRIU_CG_MODE_SOFT;
}

Result<UniqueFd> open_dir(const std::string &path, const char *what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return failf_errno("{} {}", what, path);
  return fd;
}

// Runs argv (argv[0] an absolute path) with stdout+stderr captured; returns the output.
std::string capture(const std::vector<std::string> &argv) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return "";
  UniqueFd rd(p[0]), wr(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  std::vector<char *> args;
  for (const auto &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  wr.reset();
  if (rc != 0)
    return "";
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(rd.get(), buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// The first error (usually the cause) and the last ones (where CRIU gave up), each with the line
// before it, which often names the object CRIU was working on.
std::string error_lines(const std::string &text, size_t max_lines) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  // Some causes are logged without the "Error" prefix ("Can't connect to server ..."): the first
  // of those counts as the first error.
  auto is_error = [](const std::string &l) { return l.find("Error") != std::string::npos; };
  auto is_cause = [&](const std::string &l) { return is_error(l) || l.find("Can't ") != std::string::npos; };
  std::vector<size_t> errors;
  for (size_t i = 0; i < lines.size(); ++i)
    if (is_cause(lines[i]) && (errors.empty() ? true : is_error(lines[i])))
      errors.push_back(i);
  if (errors.empty())
    return "";
  std::vector<size_t> picked;
  auto pick = [&](size_t i) {
    if (i > 0 && !is_cause(lines[i - 1]))
      picked.push_back(i - 1);
    picked.push_back(i);
  };
  pick(errors.front());
  size_t tail = std::min(errors.size() - 1, max_lines > 2 ? max_lines - 2 : 1);
  for (size_t k = errors.size() - tail; k < errors.size(); ++k)
    pick(errors[k]);
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  std::string out;
  size_t last = 0;
  for (size_t n = 0; n < picked.size(); ++n) {
    if (n > 0 && picked[n] > last + 1)
      out += "\n  ...";
    out += "\n  " + lines[picked[n]];
    last = picked[n];
  }
  return out;
}

// CRIU that dies before answering (libcriu: ECOMM/ECONNREFUSED) usually refused the kernel while
// detecting its features; `criu check` prints why.
std::string kernel_check(const std::string &binary) {
  auto out = capture({binary, "check"});
  auto errors = error_lines(out, 6);
  if (errors.empty())
    return "";
  return "; `criu check` on this kernel says:" + errors;
}

Error criu_failure(const std::string &what, int rc, int saved_errno, const std::string &binary,
                   const std::string &log) {
  std::string why;
  int code = 0;
  switch (-rc) {
  case EBADE:
    why = "CRIU reported a failure";
    code = saved_errno;
    break;
  case ECONNREFUSED:
  case ECOMM:
    why = "criu swrk exited without answering (it could not start or crashed)" + kernel_check(binary);
    break;
  case EINVAL:
    why = "this CRIU does not support the request (update criu)";
    break;
  case EBADMSG:
    why = "unexpected answer from CRIU";
    break;
  default:
    why = fmt::format("libcriu returned {}", rc);
    break;
  }
  auto errors = log_errors(log);
  std::string tail = errors.empty() ? fmt::format(" (no errors in {})", log)
                                    : fmt::format("; last errors in {}:{}", log, errors);
  return Error{code, fmt::format("{}: {}{}", what, why, tail)};
}

// PATH as CRIU (started by libcriu with our environment) searches it.
std::string search_path() {
  const char *path = std::getenv("PATH");
  return path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

// The first executable regular file NAME in search_path().
std::optional<std::string> find_in_path(const std::string &name) {
  std::string dirs = search_path();
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(pos, end - pos);
    pos = end + 1;
    if (dir.empty())
      continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

// libcriu 3.17 has no setter for the RPC's empty_ns. Its criu_opts begins with the CriuOpts message
// it sends (lib/c/criu.c: `struct criu_opts { CriuOpts *rpc; ...}`, the same since CRIU 2.x, and
// CriuOpts is in the installed rpc.pb-c.h); the field is set there, after checking that a value a
// setter stored is where that layout says, so another layout is an error, never a stray write.
Status set_rpc_empty_ns(criu_opts *o, unsigned flags) {
  CriuOpts *rpc = *reinterpret_cast<CriuOpts **>(o);
  if (!rpc || !rpc->has_log_level || rpc->log_level != 4)
    return fail("libcriu: this libcriu's options are not laid out as CRIU 3.17's, so the network "
                "namespace of a tree in a user namespace cannot be dumped or restored empty",
                ENOTSUP);
  rpc->has_empty_ns = true;
  rpc->empty_ns = flags;
  return {};
}

// The options both requests carry. fds stay open until the request returns.
Status set_common(criu_opts *o, const Request &r, const UniqueFd &images, const UniqueFd &work,
                  const char *log_file) {
  criu_local_set_images_dir_fd(o, images.get());
  if (work)
    criu_local_set_work_dir_fd(o, work.get());
  criu_local_set_log_level(o, 4);
  if (criu_local_set_log_file(o, log_file) < 0)
    return fail("libcriu: setting the log file", ENOMEM);
  if (!r.root.empty() && criu_local_set_root(o, r.root.c_str()) < 0)
    return fail("libcriu: setting the root", ENOMEM);
  criu_local_set_tcp_established(o, r.tcp_established);
  criu_local_set_ext_unix_sk(o, r.ext_unix_sk);
  criu_local_set_shell_job(o, r.shell_job);
  criu_local_set_file_locks(o, r.file_locks);
  criu_local_set_auto_dedup(o, r.auto_dedup);
  criu_local_set_orphan_pts_master(o, true);
  criu_local_set_manage_cgroups(o, true);
  criu_local_set_manage_cgroups_mode(o, to_criu(r.cgroup_mode));
  // CRIU locks the tree's network with iptables-restore by default: two program starts (IPv4 and
  // IPv6) at the dump and two at its unlock, all while the container is frozen (0.23 s of a 0.78 s
  // OCI dump in the test VM), and a bare "exited, status=1" where iptables is missing. Its nftables lock goes
  // through libnftables, which Debian's criu links: in-process. A restore takes the method from the images'
  // inventory; the table such a dump leaves in the images is removed by restore() (criu_lock_table.hpp).
  // A tree in CRIU's own namespace is the exception: CRIU would lock it connection by connection,
  // and with nftables it first builds a table for that (twelve commands) even when there is no
  // connection; with the iptables method and no connection (tcp_established is off) it runs nothing.
  if (r.tree_in_criu_netns && r.tcp_established)
    return fail(
        "a tree in CRIU's network namespace is dumped without its TCP connections (CRIU would lock each "
        "with iptables)",
        EINVAL);
  auto method = r.tree_in_criu_netns ? CRIU_NETWORK_LOCK_IPTABLES : CRIU_NETWORK_LOCK_NFTABLES;
  if (criu_local_set_network_lock(o, method) < 0)
    return fail("libcriu: setting the network lock method", EINVAL);
  for (const auto &m : r.ext_mounts)
    if (criu_local_add_ext_mount(o, m.key.c_str(), m.value.c_str()) < 0)
      return failf("libcriu: adding external mount {}", m.key);
  for (const auto &e : r.externals)
    if (criu_local_add_external(o, e.c_str()) < 0)
      return failf("libcriu: adding external {}", e);
  for (const auto &i : r.inherit_fds) {
    int flags = ::fcntl(i.fd, F_GETFD);
    if (flags < 0 || ::fcntl(i.fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
      return failf_errno("fd {} for {}", i.fd, i.key);
    if (criu_local_add_inherit_fd(o, i.fd, i.key.c_str()) < 0)
      return failf("libcriu: adding inherited fd {}", i.key);
  }
  criu_local_set_notify_cb(o, on_notify);
  if (r.empty_ns)
    BH_CHECK(set_rpc_empty_ns(o, r.empty_ns));
  return {};
}

Status check_unsupported(const Request &r) {
  // libcriu 3.17 has no setter for the RPC's lazy_pages field; a request without it would silently
  // do something else than asked. (empty_ns has none either: set_rpc_empty_ns.)
  if (r.lazy_pages)
    return fail("--lazy-pages: this build's libcriu (CRIU 3.17) cannot request lazy pages");
  return {};
}

} // namespace

Result<CgroupMode> parse_cgroup_mode(const std::string &text) {
  if (text.empty() || text == "soft")
    return CgroupMode::Soft;
  if (text == "full")
    return CgroupMode::Full;
  if (text == "strict")
    return CgroupMode::Strict;
  if (text == "ignore")
    return CgroupMode::Ignore;
  return failf("--manage-cgroups-mode {:?}: must be soft, full, strict or ignore", text);
}

Result<unsigned> parse_empty_ns(const std::vector<std::string> &names) {
  unsigned flags = 0;
  for (const auto &n : names) {
    if (n == "network" || n == "net")
      flags |= CLONE_NEWNET;
    else
      return failf("--empty-ns {:?}: only \"network\" is supported (as runc)", n);
  }
  return flags;
}

Result<std::string> find_criu() {
  if (auto found = find_in_path("criu"))
    return *found;
  return failf("criu: not found in PATH ({}): checkpoint and restore need CRIU (apt-get install criu)",
               search_path());
}

std::string log_errors(const std::string &path, size_t max_lines) {
  auto text = read_file(path);
  if (!text)
    return "";
  return error_lines(*text, max_lines);
}

std::optional<int64_t> log_duration_ms(const std::string &path) {
  auto text = read_file(path);
  if (!text)
    return std::nullopt;
  // The last line that starts with "(" and a timestamp: CRIU prefixes each line it logs so.
  size_t end = text->size();
  while (end > 0) {
    size_t start = text->rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    double seconds = 0;
    if (start < end && (*text)[start] == '(' &&
        std::sscanf(text->c_str() + start + 1, "%lf)", &seconds) == 1 && seconds >= 0)
      return static_cast<int64_t>(seconds * 1000 + 0.5);
    end = start > 0 ? start - 1 : 0;
  }
  return std::nullopt;
}

Support probe() {
  Support s;
  auto binary = find_criu();
  if (!binary) {
    s.error = binary.error().text();
    return s;
  }
  s.binary = *binary;
  auto o = new_opts(s.binary);
  if (!o) {
    s.error = o.error().text();
    return s;
  }
  QuietStderr quiet;
  int v = criu_local_get_version(o->get());
  if (v <= 0) {
    s.error = fmt::format("{} does not answer{}", s.binary, kernel_check(s.binary));
    return s;
  }
  s.version = v;
  // The version needs no kernel; the feature check runs CRIU's kernel detection, which is what
  // refuses a kernel it does not know.
  struct criu_feature_check features {};
  features.mem_track = true;
  features.lazy_pages = true;
  if (criu_local_feature_check(o->get(), &features, sizeof features) < 0) {
    s.error = fmt::format("CRIU {} cannot work on this kernel{}", v, kernel_check(s.binary));
    return s;
  }
  s.mem_track = features.mem_track;
  s.lazy_pages = false; // CRIU may support it, but libcriu 3.17 cannot ask for it (check_unsupported)
  return s;
}

Result<CriuService> CriuService::start(int netns) {
  CriuService s;
  s.binary_ = BH_TRY(find_criu());
  int sk[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
    return failf_errno("criu swrk: socketpair");
  s.fd_ = sk[0];
  UniqueFd theirs(sk[1]);
  if (theirs.get() == 3) // dup2(3, 3) would leave CLOEXEC set on the one it must keep
    theirs = UniqueFd(::fcntl(sk[1], F_DUPFD_CLOEXEC, 4));
  if (!theirs)
    return failf_errno("criu swrk: moving its end of the connection");
  // As libcriu starts it: the connection's number as its argument, SIGCHLD not blocked (CRIU
  // catches its helpers' exits). Its stderr goes nowhere: what it says before it has a log file is
  // quoted by kernel_check when it fails. fd 3 is its end of the connection (a dup2 clears CLOEXEC).
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, theirs.get(), 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char swrk[] = "swrk", three[] = "3";
  char *argv[] = {const_cast<char *>(s.binary_.c_str()), swrk, three, nullptr};
  int rc = 0;
  {
    std::optional<NetnsEntered> entered;
    if (netns >= 0) {
      auto in = NetnsEntered::enter(netns);
      if (!in) {
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return tl::unexpected(with_context(in.error(), "starting criu swrk"));
      }
      entered.emplace(std::move(*in));
    }
    rc = posix_spawn(&s.pid_, s.binary_.c_str(), &fa, &attr, argv, environ);
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  theirs.reset();
  if (rc != 0) {
    s.pid_ = -1;
    return fail(fmt::format("starting {} swrk: {}", s.binary_, std::strerror(rc)), rc);
  }
  // Up when it answers: a VERSION request with keep_open, the one kind CRIU 3.17 serves and then
  // waits for the next request on the same connection (cr-service.c, chk_keepopen_req).
  CriuReq req = CRIU_REQ__INIT;
  req.type = CRIU_REQ_TYPE__VERSION;
  req.has_keep_open = true;
  req.keep_open = true;
  std::string packed(criu_req__get_packed_size(&req), '\0');
  criu_req__pack(&req, reinterpret_cast<uint8_t *>(packed.data()));
  ssize_t n = ::send(s.fd_, packed.data(), packed.size(), MSG_NOSIGNAL);
  if (n < 0 && errno != EPIPE && errno != ECONNRESET)
    return failf_errno("{} swrk: sending its first request", s.binary_);
  std::string buf(4096, '\0');
  if (n > 0)
    do
      n = ::recv(s.fd_, buf.data(), buf.size(), 0);
    while (n < 0 && errno == EINTR);
  if (n <= 0) // it exited: its connection was closed before or after our request
    return fail(fmt::format("{} swrk exited without answering (it could not start or crashed){}", s.binary_,
                            kernel_check(s.binary_)),
                ECOMM);
  CriuResp *resp =
      criu_resp__unpack(nullptr, static_cast<size_t>(n), reinterpret_cast<uint8_t *>(buf.data()));
  bool ok = resp && resp->type == CRIU_REQ_TYPE__VERSION && resp->success;
  if (resp)
    criu_resp__free_unpacked(resp, nullptr);
  if (!ok)
    return fail(fmt::format("{} swrk: unexpected answer to a VERSION request", s.binary_), EBADMSG);
  return s;
}

CriuService::CriuService(CriuService &&o) noexcept
    : binary_(std::move(o.binary_)), fd_(std::exchange(o.fd_, -1)), pid_(std::exchange(o.pid_, -1)) {}

CriuService::~CriuService() {
  if (fd_ >= 0)
    ::close(fd_); // an idle swrk exits when its connection closes; kill it anyway, it may be stuck
  if (pid_ > 0) {
    if (fd_ >= 0)
      ::kill(pid_, SIGKILL);
    reap();
  }
}

int CriuService::hand_over() { return std::exchange(fd_, -1); }

void CriuService::reap() {
  if (pid_ <= 0)
    return;
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Status dump(const DumpRequest &r) {
  BH_CHECK(check_unsupported(r));
  if (r.tree_in_criu_netns && !r.service)
    return fail("a dump with CRIU in the tree's network namespace needs CRIU started there (CriuService)",
                EINVAL);
  std::string binary = r.service ? r.service->binary() : BH_TRY(find_criu());
  UniqueFd images = BH_TRY(open_dir(r.images_dir, "--image-path"));
  UniqueFd work;
  if (!r.work_dir.empty())
    work = BH_TRY(open_dir(r.work_dir, "--work-path"));
  Opts o = BH_TRY(new_opts(binary));
  const char *log_file = r.pre_dump ? "pre-dump.log" : "dump.log";
  BH_CHECK(set_common(o.get(), r, images, work, log_file));
  criu_local_set_pid(o.get(), r.pid);
  criu_local_set_leave_running(o.get(), r.leave_running);
  // Unlocked, a listener may queue a connection after the caller's last look (criu_netns.hpp);
  // CRIU would fail on it. The tree runs on with it, and a restore loses every connection of such
  // images anyway.
  if (r.tree_in_criu_netns)
    criu_local_set_tcp_skip_in_flight(o.get(), true);
  if (!r.parent_path.empty()) {
    if (criu_local_set_parent_images(o.get(), r.parent_path.c_str()) < 0)
      return fail("libcriu: setting the parent images", ENOMEM);
    criu_local_set_track_mem(o.get(), true);
  }
  // A dump that leaves the tree running starts the dirty-page tracking too: the next dump (a
  // replication round, daemon/replicator.cpp) then takes it as parent and writes only the pages
  // changed since.
  if (r.pre_dump || r.leave_running)
    criu_local_set_track_mem(o.get(), true);
  // libcriu 3.17 returns -ENOMEM from this setter even when it succeeded (its success path falls
  // through to the error return), so its result says nothing.
  if (!r.page_server_address.empty())
    (void)criu_local_set_page_server_address_port(o.get(), r.page_server_address.c_str(), r.page_server_port);
  if (!r.freeze_cgroup.empty() && criu_local_set_freeze_cgroup(o.get(), r.freeze_cgroup.c_str()) < 0)
    return fail("libcriu: setting the freeze cgroup", ENOMEM);

  if (r.service)
    criu_local_set_service_fd(o.get(), r.service->hand_over());

  NotifyContext ctx;
  ctx.status_fd = r.status_fd;
  g_notify = &ctx;
  std::optional<QuietStderr> quiet(std::in_place);
  errno = 0;
  int rc = r.pre_dump ? criu_local_pre_dump(o.get()) : criu_local_dump(o.get());
  int saved = errno;
  quiet.reset();
  g_notify = nullptr;
  if (r.progress)
    r.progress("criu answered");
  if (r.service) {
    r.service->reap(); // libcriu waits only for a swrk it started itself
    if (r.progress)
      r.progress("criu exited");
  }
  if (rc < 0)
    return tl::unexpected(
        criu_failure(fmt::format("criu {} of pid {}", r.pre_dump ? "pre-dump" : "dump", r.pid), rc, saved,
                     binary, (r.work_dir.empty() ? r.images_dir : r.work_dir) + "/" + log_file));
  return {};
}

Result<Restored> restore(const RestoreRequest &r) {
  BH_CHECK(check_unsupported(r));
  std::string binary = BH_TRY(find_criu());
  UniqueFd images = BH_TRY(open_dir(r.images_dir, "--image-path"));
  UniqueFd work;
  if (!r.work_dir.empty())
    work = BH_TRY(open_dir(r.work_dir, "--work-path"));
  Opts o = BH_TRY(new_opts(binary));
  BH_CHECK(set_common(o.get(), r, images, work, "restore.log"));
  // Device nodes may come back with other inode numbers (a fresh tmpfs /dev).
  criu_local_set_evasive_devices(o.get(), true);
  if (!r.cgroup_root.empty() && criu_local_add_cg_root(o.get(), nullptr, r.cgroup_root.c_str()) < 0)
    return fail("libcriu: setting the cgroup root", ENOMEM);

  NotifyContext ctx;
  ctx.status_fd = r.status_fd;
  ctx.setup_namespaces = &r.setup_namespaces;
  ctx.lock_tables = criu_lock_tables(images.get());
  g_notify = &ctx;
  // libcriu forks `criu swrk` from this thread: CRIU, and the tree it forks, start in its namespace.
  std::optional<NetnsEntered> entered;
  if (r.tree_in_criu_netns) {
    if (r.criu_netns < 0)
      return fail("a restore with CRIU in the tree's network namespace needs that namespace", EINVAL);
    entered.emplace(BH_TRY(NetnsEntered::enter(r.criu_netns)));
  }
  std::optional<QuietStderr> quiet(std::in_place);
  errno = 0;
  int rc = criu_local_restore_child(o.get());
  int saved = errno;
  quiet.reset();
  entered.reset();
  g_notify = nullptr;
  if (ctx.setup_error) {
    if (rc > 0) // CRIU went on regardless: the tree must not run without what setup gave it
      ::kill(rc, SIGKILL);
    return tl::unexpected(with_context(*ctx.setup_error, "criu restore: setting up the restored namespaces"));
  }
  if (ctx.unlock_error) {
    if (rc > 0) // it would run without network: not a container to hand over
      ::kill(rc, SIGKILL);
    return tl::unexpected(with_context(*ctx.unlock_error, "criu restore"));
  }
  if (rc <= 0)
    return tl::unexpected(criu_failure("criu restore", rc < 0 ? rc : -EBADMSG, saved, binary,
                                       (r.work_dir.empty() ? r.images_dir : r.work_dir) + "/restore.log"));
  Restored out;
  out.pid = rc;
  if (ctx.pts_master) {
    int fd = criu_get_orphan_pts_master_fd();
    if (fd >= 0) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      out.pts_master.reset(fd);
    }
  }
  return out;
}

} // namespace bulkhead::migration
