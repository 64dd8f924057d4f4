// Child side of the create handshake; the message table is in create.cpp. Steps run in the order
// the kernel requires: join namespaces (user first), create the rest, wait for id maps, become
// root in the user namespace, build the rootfs, pivot, apply process attributes, report Ready,
// block until `start`, exec.
#include "runtime/init.hpp"

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "namespaces/uts_sysctl.hpp"
#include "rootfs/devices.hpp"
#include "rootfs/masks.hpp"
#include "rootfs/mounts.hpp"
#include "rootfs/pivot.hpp"
#include "runtime/clone.hpp"
#include "runtime/console.hpp"
#include "runtime/hooks.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/rootless.hpp"
#include "runtime/sync.hpp"
#include "security/plan.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace bulkhead::runtime {

namespace {

[[noreturn]] void die(int sync_fd, const Error &e) {
  send_error(sync_fd, e);
  ::_exit(1);
}

// Only what init itself needs survives clone: stdio, --preserve-fds, the sync and start sockets and
// the namespace fds to join. Everything else is closed now rather than at exec: the caller's pipes
// must see EOF while the container waits in "created", the state directory fd carries the
// container's flock, and no host fd may ever reach the container.
void close_inherited_fds(const InitArgs &a) {
  // The parent is single-threaded, so allocating in this forked copy of it is safe.
  std::vector<int> keep;
  auto add = [&](int fd) {
    if (fd >= 0)
      keep.push_back(fd);
  };
  add(a.sync_fd);
  add(a.start_listen_fd);
  add(a.console_fd);
  add(a.seccomp_listener_fd);
  for (const auto &j : a.namespaces->joins)
    add(j.fd.get());
  for (int fd : a.bind_source_fds)
    add(fd);
  std::sort(keep.begin(), keep.end());
  size_t n = keep.size();
  unsigned int from = static_cast<unsigned int>(3 + a.preserve_fds);
  for (size_t i = 0; i < n; ++i) {
    auto fd = static_cast<unsigned int>(keep[i]);
    if (fd < from)
      continue;
    if (fd > from)
      ::syscall(SYS_close_range, from, fd - 1, 0);
    from = fd + 1;
  }
  ::syscall(SYS_close_range, from, ~0U, 0);
  // Passed fds reach the process even when the caller opened them O_CLOEXEC (as runc's do).
  for (int fd = 3; fd < 3 + a.preserve_fds; ++fd)
    if (std::find(keep.begin(), keep.end(), fd) == keep.end())
      ::fcntl(fd, F_SETFD, 0);
}

bool is_listen_variable(const std::string &e) {
  return e.starts_with("LISTEN_FDS=") || e.starts_with("LISTEN_PID=") || e.starts_with("LISTEN_FDNAMES=");
}

Result<Message> expect_message(int fd, Msg type) {
  Message m = BH_TRY(recv_msg(fd));
  if (m.type == Msg::Error)
    return fail(m.payload, m.code);
  if (m.type != type)
    return failf("sync: unexpected message {}", static_cast<int>(m.type));
  return m;
}

Status expect(int fd, Msg type) {
  return expect_message(fd, type).map([](const Message &) {});
}

Status wait_for_id_maps(int sync_fd, bool rootless_parent) {
  // A non-dumpable process's /proc files belong to root, so a rootless parent could not open our
  // uid_map: dumpable only while it writes the maps (nothing of the container has run yet), as runc
  // does for rootless containers.
  if (rootless_parent)
    ::prctl(PR_SET_DUMPABLE, 1);
  BH_CHECK(send_msg(sync_fd, Msg::UsernsReady));
  auto mapped = expect(sync_fd, Msg::UsernsMapped);
  if (rootless_parent)
    ::prctl(PR_SET_DUMPABLE, 0);
  return mapped;
}

// Forks the real init into the pid namespace this process prepared (CLONE_PARENT keeps the
// create/run process as its parent); the intermediate reports init's host pid and exits, only
// init returns.
void become_init(const InitArgs &a) {
  long pid = clone_child(CLONE_PARENT, -1, nullptr, 0).pid;
  if (pid < 0)
    die(a.sync_fd, Error{errno, "clone of container init"});
  if (pid == 0)
    return; // caller continues as init
  (void)send_msg(a.sync_fd, Msg::InitPid, static_cast<int32_t>(pid));
  ::_exit(0);
}

Status setup_namespaces(const InitArgs &a) {
  const auto &plan = *a.namespaces;
  if (a.intermediate) {
    BH_CHECK(ns::join_namespaces(plan, 0));
    if (plan.creates(CLONE_NEWUSER)) {
      if (::unshare(CLONE_NEWUSER) < 0)
        return failf_errno("creating user namespace");
      BH_CHECK(wait_for_id_maps(a.sync_fd, a.rootless_parent));
    }
    unsigned long rest =
        plan.create_flags & ~static_cast<unsigned long>(CLONE_NEWUSER | CLONE_NEWCGROUP | CLONE_NEWTIME);
    if (rest && ::unshare(static_cast<int>(rest)) < 0)
      return failf_errno("creating namespaces ({:#x})", rest);
    become_init(a);
    // Only init gets here. PR_SET_PDEATHSIG is cleared by fork.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  } else if (plan.creates(CLONE_NEWUSER)) {
    BH_CHECK(wait_for_id_maps(a.sync_fd, a.rootless_parent));
  }
  if (plan.creates(CLONE_NEWUSER) || plan.joins_flag(CLONE_NEWUSER)) {
    if (::setresgid(0, 0, 0) < 0)
      return failf_errno("becoming gid 0 in the user namespace");
    if (::setresuid(0, 0, 0) < 0)
      return failf_errno("becoming uid 0 in the user namespace");
  }
  // Created only now that we sit in the container's cgroup: its root is that cgroup.
  if (plan.creates(CLONE_NEWCGROUP) && ::unshare(CLONE_NEWCGROUP) < 0)
    return failf_errno("creating cgroup namespace");
  if (plan.creates(CLONE_NEWTIME)) {
    if (::unshare(CLONE_NEWTIME) < 0)
      return failf_errno("creating time namespace");
    BH_CHECK(ns::write_time_offsets(a.spec->linux->time_offsets));
  }
  return {};
}

bool has_mount_namespace(const InitArgs &a) {
  return a.namespaces->creates(CLONE_NEWNS) || a.namespaces->joins_flag(CLONE_NEWNS);
}

bool has_dev_mount(const oci::Spec &s) {
  for (const auto &m : s.mounts)
    if (m.destination == "/dev" || m.destination == "/dev/")
      return true;
  return false;
}

// `late`: the mounts still to be made read-only (rootfs::late_readonly_mounts), once the console
// is in place too.
Status build_rootfs(const InitArgs &a, UniqueFd &root_fd, std::vector<size_t> &late) {
  const oci::Spec &s = *a.spec;
  const oci::Linux empty;
  const oci::Linux &lx = s.linux ? *s.linux : empty;
  if (!has_mount_namespace(a)) {
    // The runtime's own mount namespace: nothing is mounted (create refused every piece that
    // would need it); init only chroots into the rootfs later.
    root_fd.reset(::open(a.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd)
      return failf_errno("opening rootfs {}", a.rootfs);
    return {};
  }
  root_fd = BH_TRY(rootfs::prepare_root(a.rootfs, lx.rootfs_propagation));
  BH_CHECK(security::check_special_mount_destinations(root_fd.get(), s));
  // Also a user namespace the runtime itself was run in (rootless podman's): device nodes cannot be
  // made there either, only bound from the host.
  bool in_userns = a.namespaces->creates(CLONE_NEWUSER) || a.namespaces->joins_flag(CLONE_NEWUSER) ||
                   !in_initial_user_namespace();
  bool in_cgroupns = a.namespaces->creates(CLONE_NEWCGROUP) || a.namespaces->joins_flag(CLONE_NEWCGROUP);
  rootfs::MountContext ctx{root_fd.get(), a.bundle, in_userns, lx.mount_label, a.cgroup_dir, in_cgroupns};
  // A read-only /dev (or a read-only mount with mounts below it) is mounted writable and made
  // read-only once everything inside exists.
  late = rootfs::late_readonly_mounts(s.mounts);
  for (size_t i = 0; i < s.mounts.size(); ++i) {
    bool is_late = std::find(late.begin(), late.end(), i) != late.end();
    int source_fd = i < a.bind_source_fds.size() ? a.bind_source_fds[i] : -1;
    BH_CHECK(
        rootfs::mount_entry(ctx, is_late ? rootfs::without_readonly(s.mounts[i]) : s.mounts[i], source_fd));
  }
  // Attached now (or unused): the container must never hold a handle on a host mount.
  for (int fd : a.bind_source_fds)
    if (fd >= 0)
      ::close(fd);
  if (has_dev_mount(s)) {
    BH_CHECK(rootfs::create_devices(root_fd.get(), rootfs::default_devices(), in_userns));
    BH_CHECK(rootfs::create_dev_symlinks(root_fd.get()));
  }
  BH_CHECK(rootfs::create_devices(root_fd.get(), lx.devices, in_userns));
  return {};
}

Status apply_sysctls(const oci::Spec &s, int proc_fd) {
  if (!s.linux || s.linux->sysctl.empty())
    return {};
  // proc_fd is the verified private procfs; we already live in the container's namespaces.
  return ns::apply_sysctls(proc_fd, s.linux->sysctl);
}

Status join_session_keyring(const InitArgs &a) {
  if (a.no_new_keyring)
    return {};
  auto name = "_ses." + a.id;
  // KEYCTL_JOIN_SESSION_KEYRING: a fresh keyring so containers never share the host's keys.
  if (::syscall(SYS_keyctl, 1, name.c_str()) < 0 && errno != ENOSYS && errno != EPERM)
    return failf_errno("creating session keyring");
  return {};
}

Status prepare(const InitArgs &a, std::string &exe) {
  const oci::Spec &s = *a.spec;
  BH_CHECK(setup_namespaces(a));
  BH_CHECK(ns::set_hostname(s.hostname, s.domainname));

  // Opened before any container-controlled mount exists: sysctls and LSM labels go only here.
  // Only when something will be written: a detached procfs mount is freed at close through an
  // expedited RCU grace period (about 0.9 ms under load), and most containers write nothing.
  UniqueFd proc;
  if ((s.linux && !s.linux->sysctl.empty()) || security::writes_procfs(*a.security))
    proc = BH_TRY(security::open_private_procfs());
  UniqueFd root_fd;
  std::vector<size_t> late_readonly;
  BH_CHECK(build_rootfs(a, root_fd, late_readonly));
  BH_CHECK(apply_sysctls(s, proc.get()));
  UniqueFd pty_slave;
  if (s.process->terminal) {
    pty_slave = BH_TRY(setup_console(root_fd.get(), *s.process, a.console_fd));
    ::close(a.console_fd);
  }
  for (size_t i : late_readonly)
    BH_CHECK(rootfs::make_readonly(root_fd.get(), s.mounts[i].destination));

  if (a.run_hooks_handshake) {
    BH_CHECK(send_msg(a.sync_fd, Msg::MountsReady));
    Message m = BH_TRY(recv_msg(a.sync_fd));
    if (m.type == Msg::Error)
      return fail(m.payload, m.code);
    if (m.type != Msg::HooksDone)
      return fail("sync: expected HooksDone");
    // As runc: relative paths of createContainer hooks resolve in the rootfs (enter_root fchdirs
    // again, so nothing else depends on this cwd).
    if (::fchdir(root_fd.get()) < 0)
      return failf_errno("entering the rootfs {} for the createContainer hooks", a.rootfs);
    BH_CHECK(run_hooks(s.hooks.create_container, m.payload, "createContainer"));
  }

  const oci::Linux empty;
  const oci::Linux &lx = s.linux ? *s.linux : empty;
  BH_CHECK(rootfs::mask_paths(root_fd.get(), lx.masked_paths));
  BH_CHECK(rootfs::readonly_paths(root_fd.get(), lx.readonly_paths));
  if (has_mount_namespace(a)) {
    BH_CHECK(rootfs::enter_root(root_fd.get(), a.no_pivot));
    BH_CHECK(rootfs::finalize_root(lx.rootfs_propagation, s.root.readonly));
  } else {
    BH_CHECK(rootfs::chroot_into(root_fd.get()));
  }
  root_fd.reset();
  // Only where build_rootfs made /dev itself (as runc): a rootfs's own /dev/null on a nodev mount
  // could not be opened, and the start would fail over something only checkpoints need.
  if (has_dev_mount(s))
    BH_CHECK(rootfs::reopen_stdio_dev_null());

  const oci::Process &p = *s.process;
  BH_CHECK(join_session_keyring(a));
  BH_CHECK(apply_rlimits(p));
  BH_CHECK(security::apply_process_attributes(*a.security));
  BH_CHECK(security::apply_lsm_labels(*a.security, proc.get()));
  proc.reset();
  BH_CHECK(security::apply_capabilities_and_user(*a.security, p.user));
  BH_CHECK(security::set_no_new_privileges(*a.security));
  BH_CHECK(enter_cwd(p.cwd));
  exe = BH_TRY(find_executable(p));
  if (pty_slave)
    BH_CHECK(make_controlling_terminal(std::move(pty_slave)));
  else if (::setsid() < 0 && errno != EPERM)
    // As runc, the container's process leads its own session even without a terminal: a session
    // led from outside the container's pid namespace is one CRIU cannot dump (without
    // --shell-job). EPERM: init already leads a process group (the caller made it so); keep it.
    return failf_errno("setsid");
  return {};
}

// Blocks until `start` connects; returns the connection (CLOEXEC: it closes when exec succeeds,
// which is how `start` learns the process is running) and the state JSON it sent.
Result<UniqueFd> wait_for_start(int listen_fd, std::string &state_json) {
  int conn;
  while ((conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC)) < 0)
    if (errno != EINTR)
      return failf_errno("waiting for start");
  UniqueFd c(conn);
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(c.get(), buf, sizeof buf, 0)) < 0)
    if (errno != EINTR)
      return failf_errno("reading the start request");
  state_json.assign(buf, static_cast<size_t>(n));
  return c;
}

} // namespace

void container_init(const InitArgs &given) {
  // A copy: with the systemd driver the cgroup is known only once systemd has moved us into it,
  // and Go carries its path.
  InitArgs a = given;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  close_inherited_fds(a);
  // getppid() is 0 in a new pid namespace, so a parent that died before PDEATHSIG was armed is
  // noticed through the sync socket (EOF) instead.
  ::prctl(PR_SET_DUMPABLE, 0);

  if (a.wait_for_cgroup) {
    auto go = expect_message(a.sync_fd, Msg::Go);
    if (!go)
      die(a.sync_fd, go.error());
    if (!go->payload.empty())
      a.cgroup_dir = go->payload;
  }
  std::string exe;
  auto prepared = prepare(a, exe);
  if (!prepared)
    die(a.sync_fd, prepared.error());

  // From here the creating process may exit; init must outlive it.
  ::prctl(PR_SET_PDEATHSIG, 0);
  if (!send_msg(a.sync_fd, Msg::Ready))
    ::_exit(1);
  ::close(a.sync_fd);

  std::string state_json;
  auto conn = wait_for_start(a.start_listen_fd, state_json);
  if (!conn)
    ::_exit(1);
  ::close(a.start_listen_fd);

  auto report = [&](const Error &e) {
    auto text = e.text();
    (void)::send(conn->get(), text.data(), text.size(), MSG_NOSIGNAL);
    ::_exit(127);
  };
  reset_signals();
  // The last steps before execve: the filter then only has to allow sendmsg (NOTIFY), capset
  // (without no_new_privs) and what the startContainer hooks do.
  auto confined = security::load_seccomp(*a.security, a.seccomp_listener_fd, state_json);
  if (!confined)
    report(confined.error());
  if (a.seccomp_listener_fd >= 0)
    ::close(a.seccomp_listener_fd);
  // As runc: the hooks run confined like the process itself, so a profile that forbids what a
  // hook needs makes `start` fail instead of letting the hook do it.
  auto hooks = run_hooks(a.spec->hooks.start_container, state_json, "startContainer");
  if (!hooks)
    report(hooks.error());
  const oci::Process &p = *a.spec->process;
  std::vector<char *> argv, envp;
  for (const auto &s : p.args)
    argv.push_back(const_cast<char *>(s.c_str()));
  argv.push_back(nullptr);
  std::string listen_fds, listen_pid;
  for (const auto &s : p.env)
    if (a.listen_fds == 0 || !is_listen_variable(s))
      envp.push_back(const_cast<char *>(s.c_str()));
  if (a.listen_fds > 0) {
    // Our pid as the process will see it: 1 in a new pid namespace, else whatever we are.
    listen_fds = fmt::format("LISTEN_FDS={}", a.listen_fds);
    listen_pid = fmt::format("LISTEN_PID={}", ::getpid());
    envp.push_back(listen_fds.data());
    envp.push_back(listen_pid.data());
  }
  envp.push_back(nullptr);
  ::execve(exe.c_str(), argv.data(), envp.data());
  report(Error{errno, fmt::format("exec {:?}", exe)});
  ::_exit(127);
}

} // namespace bulkhead::runtime
