// `exec`: a new process inside a running container.
//
// | # | actor  | work                                                        | message               |
// |---|--------|-------------------------------------------------------------|-----------------------|
// | 1 | parent | lock+load record and the config snapshot, build the process,|                       |
// |   |        | compile its security plan, pidfd of init (verified start    |                       |
// |   |        | time), setns(pidfd, CLONE_NEWPID) for its children          |                       |
// | 2 | parent | clone3(CLONE_INTO_CGROUP = the container's cgroup)          | sync socket inherited |
// | 2a| child  | (no CLONE_INTO_CGROUP, or clone(2) because clone3 is ENOSYS) |                       |
// |   |        | writes itself into the cgroup's cgroup.procs first          |                       |
// | 3 | child  | setns(pidfd, every other namespace that differs), private   | Error(text) on any    |
// |   |        | procfs, attributes, LSM, rlimits, pty, user+caps, cwd,      | failure, then exit    |
// |   |        | executable lookup, seccomp                                  |                       |
// | 4 | child  | execve: the CLOEXEC sync socket closes                      | parent sees EOF: ok   |
// | 5 | parent | detach: pid file and return; else relay signals/pty, reap   |                       |
#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <optional>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"
#include "cgroups/cgroup.hpp"
#include "oci/parse.hpp"
#include "rootfs/pivot.hpp"
#include "rootfs/safe_path.hpp"
#include "runtime/clone.hpp"
#include "runtime/console.hpp"
#include "runtime/container.hpp"
#include "runtime/foreground.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/sync.hpp"
#include "security/plan.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace bulkhead::runtime {

namespace {

Result<uint32_t> parse_id(const std::string &text, const char *what) {
  char *end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || v > UINT32_MAX)
    return failf("--user: invalid {} {:?}", what, text);
  return static_cast<uint32_t>(v);
}

void set_env(std::vector<std::string> &env, const std::string &kv) {
  auto key = kv.substr(0, kv.find('=') + 1);
  for (auto &e : env)
    if (e.rfind(key, 0) == 0) {
      e = kv;
      return;
    }
  env.push_back(kv);
}

Result<oci::Process> build_process(const oci::Spec &spec, const ExecOptions &o) {
  if (!o.process_file.empty()) {
    std::string text = BH_TRY(read_file(o.process_file));
    oci::Process p = BH_TRY(context(oci::parse_process(text), o.process_file));
    if (p.args.empty())
      return failf("{}: args: must be a non-empty array", o.process_file);
    return p;
  }
  if (o.args.empty())
    return fail("exec: a command to run (or --process) is required");
  oci::Process p = *spec.process;
  p.args = o.args;
  p.terminal = o.tty;
  p.console_size.reset();
  if (!o.cwd.empty())
    p.cwd = o.cwd;
  for (const auto &kv : o.env) {
    if (kv.find('=') == std::string::npos)
      return failf("--env {:?}: expected KEY=VALUE", kv);
    set_env(p.env, kv);
  }
  if (!o.user.empty()) {
    auto colon = o.user.find(':');
    p.user.uid = BH_TRY(parse_id(o.user.substr(0, colon), "uid"));
    if (colon != std::string::npos)
      p.user.gid = BH_TRY(parse_id(o.user.substr(colon + 1), "gid"));
  }
  if (!o.additional_gids.empty())
    p.user.additional_gids = o.additional_gids;
  if (!o.caps.empty()) {
    if (!p.capabilities)
      p.capabilities = oci::Capabilities{};
    for (const auto &c : o.caps)
      for (auto *set : {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted})
        set->push_back(c);
  }
  if (o.no_new_privs)
    p.no_new_privileges = true;
  if (!o.apparmor.empty())
    p.apparmor_profile = o.apparmor;
  if (!o.process_label.empty())
    p.selinux_label = o.process_label;
  return p;
}

// Namespaces of init that differ from ours: setns into one's own user namespace is an error.
Result<int> namespaces_to_join(pid_t pid) {
  static constexpr std::pair<const char *, int> kinds[] = {
      {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},  {"pid", CLONE_NEWPID},       {"net", CLONE_NEWNET},
      {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
  };
  int flags = 0;
  for (const auto &[name, flag] : kinds) {
    struct stat ours {
    }, theirs{};
    auto path = fmt::format("/proc/{}/ns/{}", pid, name);
    if (::stat(fmt::format("/proc/self/ns/{}", name).c_str(), &ours) < 0)
      continue; // kernel lacks it
    if (::stat(path.c_str(), &theirs) < 0)
      return failf_errno("reading {}", path);
    if (ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev)
      flags |= flag;
  }
  return flags;
}

// The cgroup v2 directory of the container's init (from /proc/PID/cgroup, which this process, in
// the host's cgroup namespace, reads as a full path), if it is below the container's cgroup.
std::optional<UniqueFd> init_cgroup_fd(pid_t init, const std::string &mount,
                                       const std::string &container_cg) {
  const std::string where = fmt::format("/proc/{}/cgroup", init);
  auto text = read_file(where);
  if (!text)
    return std::nullopt;
  auto path = cgroups::unified_cgroup_from(*text, where);
  if (!path || path->find("/..") != std::string::npos || !path->starts_with(container_cg + "/"))
    return std::nullopt;
  UniqueFd fd(::open((mount + *path).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return std::nullopt;
  return fd;
}

// `--cgroup [CONTROLLER[,CONTROLLER]:]PATH` entries -> the one sub-cgroup PATH ("" for none),
// relative to the container's cgroup, with "." and empty components dropped. cgroup v2 has a
// single hierarchy, so the entries must agree; ".." is refused outright, as anything leaving the
// container's cgroup would be.
Result<std::string> sub_cgroup_path(const std::vector<std::string> &entries) {
  std::string chosen;
  for (const auto &entry : entries) {
    auto colon = entry.find(':');
    std::string path = entry;
    if (colon != std::string::npos && entry.find('/') > colon)
      path = entry.substr(colon + 1);
    std::string clean;
    size_t pos = 0;
    while (pos <= path.size()) {
      size_t end = std::min(path.find('/', pos), path.size());
      std::string part = path.substr(pos, end - pos);
      pos = end + 1;
      if (part == "..")
        return failf("--cgroup {:?}: {:?} is not a sub cgroup path", entry, path);
      if (!part.empty() && part != ".")
        clean += "/" + part;
    }
    if (clean.empty())
      return failf("--cgroup {:?}: {:?} is not a sub cgroup path (it names the container's own cgroup)",
                   entry, path);
    if (!chosen.empty() && chosen != clean)
      return failf("--cgroup {:?}: cgroup v2 has one hierarchy, so every --cgroup must name the same "
                   "path (another names {:?})",
                   entry, chosen.substr(1));
    chosen = clean;
  }
  return chosen;
}

struct ExecChild {
  const oci::Process *process;
  const security::SecurityPlan *security;
  int pidfd;
  int join_flags;
  int sync_fd;
  int console_fd;
  int preserve_fds;
  int join_cgroup_fd = -1; // the container's cgroup, when the child must move itself there
  int listener_fd = -1;    // seccomp agent (SCMP_ACT_NOTIFY): the new filter's fd goes there
  const std::string *state_json = nullptr;
  int root_fd = -1; // init's root, for a container without a mount namespace (chroot into it)
};

Status prepare_exec(const ExecChild &c, std::string &exe) {
  // Opened before joining: a procfs the container's mount namespace cannot have tampered with.
  UniqueFd proc;
  if (security::writes_procfs(*c.security))
    proc = BH_TRY(security::open_private_procfs());
  int rest = c.join_flags & ~CLONE_NEWPID;
  if (rest && ::setns(c.pidfd, rest) < 0)
    return failf_errno("joining the container's namespaces ({:#x})", rest);
  if ((c.join_flags & CLONE_NEWUSER) && (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0))
    return failf_errno("becoming root in the container's user namespace");
  if (c.root_fd >= 0) {
    BH_CHECK(rootfs::chroot_into(c.root_fd));
    ::close(c.root_fd);
  }
  BH_CHECK(security::apply_process_attributes(*c.security));
  BH_CHECK(security::apply_lsm_labels(*c.security, proc.get()));
  const oci::Process &p = *c.process;
  BH_CHECK(apply_rlimits(p));
  UniqueFd slave;
  if (p.terminal) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root)
      return failf_errno("opening the container root");
    slave = BH_TRY(open_pty(root.get(), p, c.console_fd));
  }
  BH_CHECK(security::apply_capabilities_and_user(*c.security, p.user));
  BH_CHECK(security::set_no_new_privileges(*c.security));
  BH_CHECK(enter_cwd(p.cwd.empty() ? "/" : p.cwd));
  exe = BH_TRY(find_executable(p));
  if (slave)
    BH_CHECK(make_controlling_terminal(std::move(slave)));
  return {};
}

[[noreturn]] void exec_child(const ExecChild &c) {
  if (c.join_cgroup_fd >= 0) {
    UniqueFd procs(::openat(c.join_cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!procs || ::write(procs.get(), "0", 1) != 1) {
      send_error(c.sync_fd, Error{errno, "joining the container's cgroup (cgroup.procs)"});
      ::_exit(1);
    }
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_DUMPABLE, 0);
  // Only stdio, --preserve-fds and our own (CLOEXEC) sockets survive.
  int keep[5] = {c.sync_fd, c.console_fd, c.pidfd, c.listener_fd, c.root_fd};
  std::sort(keep, keep + 5);
  unsigned int from = static_cast<unsigned int>(3 + c.preserve_fds);
  for (int fd : keep) {
    if (fd < 0 || static_cast<unsigned int>(fd) < from)
      continue;
    if (static_cast<unsigned int>(fd) > from)
      ::syscall(SYS_close_range, from, fd - 1, 0);
    from = static_cast<unsigned int>(fd) + 1;
  }
  ::syscall(SYS_close_range, from, ~0U, 0);

  std::string exe;
  auto ready = prepare_exec(c, exe);
  if (!ready) {
    send_error(c.sync_fd, ready.error());
    ::_exit(1);
  }
  reset_signals();
  // Each exec'd process has a filter (and notify fd) of its own: the agent gets it like init's.
  auto confined = security::load_seccomp(*c.security, c.listener_fd, *c.state_json);
  if (c.listener_fd >= 0)
    ::close(c.listener_fd);
  if (!confined) {
    send_error(c.sync_fd, confined.error());
    ::_exit(1);
  }
  std::vector<char *> argv, envp;
  for (const auto &s : c.process->args)
    argv.push_back(const_cast<char *>(s.c_str()));
  argv.push_back(nullptr);
  for (const auto &s : c.process->env)
    envp.push_back(const_cast<char *>(s.c_str()));
  envp.push_back(nullptr);
  // PDEATHSIG survives execve: the process must outlive a detached (or killed) `exec`.
  ::prctl(PR_SET_PDEATHSIG, 0);
  ::execve(exe.c_str(), argv.data(), envp.data());
  send_error(c.sync_fd, Error{errno, fmt::format("exec {:?}", exe)});
  ::_exit(127);
}

} // namespace

Result<int> exec_in_container(const RuntimeOptions &ro, const std::string &id, const ExecOptions &o) {
  StateStore store(ro.root);
  ContainerDir dir = BH_TRY(store.open(id));
  ContainerRecord rec = BH_TRY(dir.load());
  auto status = compute_status(dir, rec);
  if (status == "paused" && !o.ignore_paused)
    return failf("container {:?} is paused: resume it first (or pass --ignore-paused)", id);
  if (status != "running" && status != "created" && status != "paused")
    return failf("cannot exec in container {:?}: it is {}", id, status);

  std::string config_text = BH_TRY(read_file_at(dir.fd(), "config.json"));
  oci::Spec spec = BH_TRY(context(oci::parse_spec(config_text), dir.path() + "/config.json"));
  spec.process = BH_TRY(build_process(spec, o));
  if (spec.process->terminal && o.console_socket.empty() && o.detach)
    return fail("exec --tty --detach needs --console-socket");
  security::SecurityPlan plan =
      BH_TRY(security::prepare_security(spec, [&ro](const std::string &m) { log_warning(ro, m); }));

  UniqueFd listener = BH_TRY(security::connect_listener(plan));
  // Sharing our mount namespace, the container differs from us only by its chroot.
  UniqueFd init_root;
  if (!spec.linux || !spec.linux->has_namespace(oci::NamespaceType::Mount)) {
    auto path = fmt::format("/proc/{}/root", rec.init.pid);
    init_root.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!init_root)
      return failf_errno("opening {}", path);
  }
  std::string state = state_json(rec, status);
  UniqueFd pidfd = BH_TRY(open_pidfd(rec.init));
  int join = BH_TRY(namespaces_to_join(rec.init.pid));
  std::string sub_cgroup = BH_TRY(sub_cgroup_path(o.sub_cgroups));
  if (!sub_cgroup.empty() && rec.cgroup_path.empty())
    return failf("--cgroup: container {:?} has no cgroup", id);
  UniqueFd cgroup_fd;
  if (!rec.cgroup_path.empty()) {
    std::string cg = rec.cgroup_mount + rec.cgroup_path + sub_cgroup;
    cgroup_fd.reset(::open(cg.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!cgroup_fd && !sub_cgroup.empty())
      return failf_errno("--cgroup: opening the sub-cgroup {} of container {:?}", cg, id);
    if (!cgroup_fd)
      return failf_errno("opening cgroup {}", cg);
  }

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return failf_errno("sync socketpair");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);
  UniqueFd console_ours, console_theirs;
  if (spec.process->terminal) {
    if (!o.console_socket.empty()) {
      console_theirs = BH_TRY(connect_console_socket(o.console_socket));
    } else {
      int cv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv) < 0)
        return failf_errno("console socketpair");
      console_ours.reset(cv[0]);
      console_theirs.reset(cv[1]);
    }
  }

  UniqueFd pidfd_socket;
  if (!o.pidfd_socket.empty())
    pidfd_socket = BH_TRY(connect_unix_socket(o.pidfd_socket, "pidfd socket"));

  // Our children are born in the container's pid namespace; we stay where we are.
  if ((join & CLONE_NEWPID) && ::setns(pidfd.get(), CLONE_NEWPID) < 0)
    return failf_errno("joining the pid namespace of container {:?}", id);
  sigset_t relay = foreground_signals(), old;
  if (!o.detach) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::sigprocmask(SIG_BLOCK, &relay, &old);
  }
  int process_pidfd = -1;
  ExecChild child{&*spec.process,       &plan,         pidfd.get(), join, child_end.get(),
                  console_theirs.get(), o.preserve_fds};
  child.listener_fd = listener.get();
  child.root_fd = init_root.get();
  child.state_json = &state;
  dir = ContainerDir(); // never hold the container lock across a user process
  CloneResult cloned =
      clone_child(0, cgroup_fd ? cgroup_fd.get() : -1, pidfd_socket ? &process_pidfd : nullptr);
  // EBUSY: the container's cgroup has controllers enabled for children (an init such as systemd
  // moved itself to init.scope and delegated its tree), so by cgroup v2's no-internal-process rule
  // it can take no process. As runc does, the process then goes to the cgroup of init.
  if (cloned.pid < 0 && errno == EBUSY && cgroup_fd && sub_cgroup.empty()) {
    if (auto init_cg = init_cgroup_fd(rec.init.pid, rec.cgroup_mount, rec.cgroup_path)) {
      cgroup_fd = std::move(*init_cg);
      cloned = clone_child(0, cgroup_fd.get(), pidfd_socket ? &process_pidfd : nullptr);
    } else {
      errno = EBUSY;
    }
  }
  pid_t pid = static_cast<pid_t>(cloned.pid);
  // Without CLONE_INTO_CGROUP the child joins the cgroup itself, before anything else.
  if (pid == 0 && cgroup_fd && !cloned.in_cgroup)
    child.join_cgroup_fd = cgroup_fd.get();
  if (pid < 0)
    return failf_errno("clone of the exec process");
  if (pid == 0) {
    parent_end.reset();
    exec_child(child);
  }
  UniqueFd process_pidfd_owner(process_pidfd);
  log_debug(ro, fmt::format("exec {}: cloned pid {} (joining namespaces {:#x}, cgroup {})", id, pid, join,
                            rec.cgroup_mount + rec.cgroup_path + sub_cgroup));
  child_end.reset();
  listener.reset();
  console_theirs.reset();

  auto msg = recv_msg(parent_end.get());
  if (msg) { // anything but EOF means the process never reached execve
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (msg->type == Msg::Error)
      return fail(msg->payload, msg->code);
    return failf("exec: unexpected message {}", static_cast<int>(msg->type));
  }
  // As runc: a process whose caller cannot be told about it (pid file, pidfd, pty) is killed and
  // reaped here, so no orphan of a failed exec is left in the container.
  auto handed_over = [&]() -> Result<UniqueFd> {
    UniqueFd master;
    if (console_ours)
      master = BH_TRY(receive_fd(console_ours.get(), "the pty master"));
    if (!o.pid_file.empty())
      BH_CHECK(write_file_atomic(o.pid_file, std::to_string(pid)));
    if (pidfd_socket)
      BH_CHECK(send_fd(pidfd_socket.get(), process_pidfd_owner.get(), "pidfd",
                       "the exec pidfd to the pidfd socket"));
    return master;
  }();
  if (!handed_over) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return tl::unexpected(handed_over.error());
  }
  UniqueFd master = std::move(*handed_over);
  log_debug(ro, fmt::format("exec {}: pid {} runs {:?}", id, pid, spec.process->args.front()));
  if (o.detach)
    return 0;
  auto st = BH_TRY(wait_foreground(pid, std::move(master), relay));
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  log_debug(ro, fmt::format("exec {}: pid {} exited with status {}", id, pid, exit_code(st)));
  return exit_code(st);
}

} // namespace bulkhead::runtime

namespace bulkhead {

Result<int> Runtime::exec(const std::string &id, const ExecOptions &options) {
  return runtime::exec_in_container(options_, id, options);
}

} // namespace bulkhead
