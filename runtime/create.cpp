// clang-format off
// The parent side of `create`, and the create/start handshake it drives.
//
// Processes: parent = the `bulkhead create|run` process (single-threaded); init = the container's
// first process; intermediate = a short-lived process used only when namespaces are joined by path.
// Channel: a SOCK_SEQPACKET socketpair ("sync", both ends CLOEXEC) plus the listening unix socket
// <root>/<id>/start.sock that init inherits and `start` connects to.
//
// | # | actor        | work                                              | message -> reply                        |
// |---|--------------|---------------------------------------------------|-----------------------------------------|
// | 1 | parent       | validate id+config, compile security (caps,       |                                         |
// |   |              | seccomp BPF), mkdir+flock state dir, create       |                                         |
// |   |              | cgroup (+resources, device eBPF; rootless: none   |                                         |
// |   |              | when not delegated and no limits), open namespace |                                         |
// |   |              | paths, bind start.sock, connect console/listener  |                                         |
// | 2 | parent       | clone3(new namespaces, CLONE_INTO_CGROUP)         | fds inherited: sync, start.sock listener |
// | 2a| parent       | (no CLONE_INTO_CGROUP, or clone(2) because clone3 | Go -> child continues                   |
// |   |              | is ENOSYS) write cgroup.procs                     |                                         |
// | 2b| intermediate | (joining) setns paths, unshare user (+step 3),    | InitPid(pid) -> parent reaps it         |
// |   |              | unshare rest, clone(CLONE_PARENT) init, exit      |                                         |
// | 3 | child        | new user namespace only; a rootless parent (euid  | UsernsReady -> parent writes uid/gid    |
// |   |              | != 0) needs it dumpable until the reply           | maps (own id, else newuidmap/newgidmap) |
// |   |              |                                                   | -> UsernsMapped                         |
// | 4 | init         | setresuid 0, cgroup/time ns, hostname, mounts,    | MountsReady (only with hooks) -> parent |
// |   |              | devices, sysctls                                  | runs prestart+createRuntime -> HooksDone|
// |   |              |                                                   | (payload: state JSON)                   |
// | 5 | init         | createContainer hooks, masks, pivot_root, rlimits,| Ready -> parent saves state "created",  |
// |   |              | caps+user, cwd, executable lookup, pty; clears    | writes pid file, returns                |
// |   |              | PDEATHSIG                                         |                                         |
// | 6 | start        | connect start.sock, send state JSON, unlink it    | init loads seccomp, runs startContainer|
// |   |              |                                                   | hooks, execve                           |
// | 7 | init         | execve closes the CLOEXEC connection (EOF), or    | start runs poststart hooks              |
// |   |              | sends the exec error text                         |                                         |
// | * | child        | any failure: Error(text, errno), exit             | parent kills init, removes cgroup and   |
// |   |              |                                                   | state dir (Revert), reports the error   |
// clang-format on
#include <algorithm>
#include <climits>
#include <csignal>
#include <fcntl.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "cgroups/cgroup.hpp"
#include "cgroups/resources.hpp"
#include "cgroups/systemd_scope.hpp"
#include "namespaces/id_maps.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"
#include "rootfs/mounts.hpp"
#include "rootfs/safe_path.hpp"
#include "runtime/clone.hpp"
#include "runtime/console.hpp"
#include "runtime/container.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/rootless.hpp"
#include "runtime/sync.hpp"
#include "security/plan.hpp"

namespace bulkhead::runtime {

namespace {

Result<std::string> real_path(const std::string &path, const char *what) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf))
    return failf_errno("{} {}", what, path);
  return std::string(buf);
}

// Without a mount namespace the container shares the runtime's, so the runtime-spec has no
// pivot_root and no rootfs mounts: init only chroots into root.path. Each piece that would have to
// change the shared namespace is refused by name rather than done on the host.
Status check_shared_mount_namespace(const oci::Spec &spec) {
  const char *why = "the container has no mount namespace of its own (linux.namespaces lists no "
                    "\"mount\"), and bulkhead does not change the runtime's: remove it or add a mount "
                    "namespace";
  const oci::Linux &lx = *spec.linux;
  if (!spec.mounts.empty())
    return failf("mounts: {} entries to mount, but {}", spec.mounts.size(), why);
  if (!lx.masked_paths.empty())
    return failf("linux.maskedPaths: {}", why);
  if (!lx.readonly_paths.empty())
    return failf("linux.readonlyPaths: {}", why);
  if (spec.root.readonly)
    return failf("root.readonly: {}", why);
  if (!lx.rootfs_propagation.empty())
    return failf("linux.rootfsPropagation: {}", why);
  if (!lx.devices.empty())
    return failf("linux.devices: {}", why);
  if (spec.process->terminal)
    return failf("process.terminal: the pty is bind-mounted to /dev/console, but {}", why);
  return {};
}

Status check_spec_supported(const oci::Spec &spec, const CreateOptions &co, int console_fd) {
  if (!spec.process)
    return fail("process: is required to create a container");
  if (!spec.linux)
    return fail("linux: is required to create a container");
  if (!spec.linux->has_namespace(oci::NamespaceType::Mount))
    BH_CHECK(check_shared_mount_namespace(spec));
  if (spec.process->terminal && co.console_socket.empty() && console_fd < 0)
    return fail("process.terminal is true: cannot allocate a terminal without --console-socket "
                "(or run it in the foreground)");
  if (co.preserve_fds < 0)
    return fail("--preserve-fds must be >= 0");
  if (co.listen_fds < 0)
    return fail("LISTEN_FDS must be >= 0");
  return {};
}

Result<UniqueFd> listen_start_socket(const ContainerDir &dir) {
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s)
    return failf_errno("creating start socket");
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  // Through the directory fd, so a long --root never exceeds sun_path.
  auto path = fmt::format("/proc/self/fd/{}/start.sock", dir.fd());
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::bind(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
    return failf_errno("binding {}/start.sock", dir.path());
  if (::listen(s.get(), 1) < 0)
    return failf_errno("listening on {}/start.sock", dir.path());
  return s;
}

struct Child {
  pid_t pid = -1;
  bool reaped = false;
};

void kill_and_reap(Child &c) {
  if (c.pid <= 0 || c.reaped)
    return;
  ::kill(c.pid, SIGKILL);
  while (::waitpid(c.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  c.reaped = true;
}

// Init is blocked on start.sock (or dead, which the caller then sees through the pidfd).
Status send_pidfd(int socket, pid_t pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd)
    return failf_errno("pidfd_open of container init {}", pid);
  return send_fd(socket, pidfd.get(), "pidfd", "the init pidfd to the pidfd socket");
}

std::string describe_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0)
    return "container init exited during create";
  if (WIFSIGNALED(status))
    return fmt::format("container init was killed by signal {} during create", WTERMSIG(status));
  return fmt::format("container init exited with status {} during create", WEXITSTATUS(status));
}

} // namespace

Result<CreatedContainer> create_container(const RuntimeOptions &ro, const std::string &id,
                                          const CreateOptions &co, int console_fd) {
  BH_CHECK(oci::validate_container_id(id));
  std::string bundle = BH_TRY(real_path(co.bundle.empty() ? "." : co.bundle, "bundle"));
  std::string config_path = bundle + "/config.json";
  std::string config_text = BH_TRY(read_file(config_path));
  oci::Spec spec = BH_TRY(context(oci::parse_spec(config_text), config_path));
  BH_CHECK(oci::validate_spec(spec));
  BH_CHECK(check_spec_supported(spec, co, console_fd));
  // No process of ours may be opened through /proc/<pid>/exe by the container (CVE-2019-5736).
  ::prctl(PR_SET_DUMPABLE, 0);
  // Capabilities, seccomp BPF, LSM presence: all resolved before anything exists on disk.
  security::SecurityPlan security =
      BH_TRY(security::prepare_security(spec, [&ro](const std::string &m) { log_warning(ro, m); }));
  UniqueFd seccomp_listener = BH_TRY(security::connect_listener(security));
  std::string root_path = spec.root.path[0] == '/' ? spec.root.path : bundle + "/" + spec.root.path;
  std::string rootfs = BH_TRY(real_path(root_path, "root.path"));
  struct stat st {};
  if (::stat(rootfs.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    return failf("root.path {}: not a directory", rootfs);
  ns::NamespacePlan plan = BH_TRY(ns::plan_namespaces(spec));
  // Without root, every other namespace and mount needs the capabilities of a user namespace's root.
  if (::geteuid() != 0 && !plan.creates(CLONE_NEWUSER) && !plan.joins_flag(CLONE_NEWUSER))
    return failf("rootless: bulkhead runs as uid {}, and a container made without root needs a user "
                 "namespace: add {{\"type\": \"user\"}} to linux.namespaces with uidMappings and "
                 "gidMappings (`bulkhead spec --rootless` writes such a config)",
                 ::geteuid());
  log_debug(ro, fmt::format("create {}: config {} parsed and validated, rootfs {}", id, config_path, rootfs));

  // The systemd driver: the path, systemd itself and the cgroup2 mount are checked before anything
  // exists, so a bad slice or a host without systemd leaves nothing behind.
  // Read once (/proc/self/uid_map): which systemd manager, whether a cgroup may be missing, whether
  // a device filter can be attached.
  const bool rootless = running_rootless();
  const cgroups::SystemdManager manager = systemd_manager(rootless);
  std::optional<cgroups::SystemdPath> scope;
  std::optional<cgroups::SystemdBus> bus;
  std::string systemd_mount;
  if (ro.systemd_cgroup) {
    scope = BH_TRY(cgroups::parse_systemd_path(spec.linux->cgroups_path, id, manager));
    systemd_mount = BH_TRY(context(cgroups::cgroup2_mount(), "--systemd-cgroup"));
    bus = BH_TRY(cgroups::SystemdBus::connect(manager));
  }

  StateStore store(ro.root);
  ContainerDir dir = BH_TRY(store.create(id));
  Revert revert;
  revert.add([&dir] { (void)dir.remove(); });

  ContainerRecord rec;
  rec.id = id;
  rec.bundle = bundle;
  rec.rootfs = rootfs;
  rec.created = now_rfc3339();
  rec.annotations = spec.annotations;
  rec.hooks = spec.hooks;
  rec.has_pid_namespace = plan.creates(CLONE_NEWPID) || plan.joins_flag(CLONE_NEWPID);

  cgroups::Cgroup cgroup;
  UniqueFd cgroup_fd;
  if (scope) {
    // Made after clone: systemd creates the scope's cgroup and moves init (waiting for Go) there.
    rec.cgroup_driver = systemd_driver_name(manager);
    rec.systemd_unit = scope->unit;
    rec.cgroup_mount = systemd_mount;
    for (const auto &w : cgroups::device_rule_warnings(
             spec.linux->resources ? spec.linux->resources->devices : std::vector<oci::DeviceCgroupRule>{}))
      log_warning(ro, w);
  } else if (auto mount = cgroups::cgroup2_mount()) {
    std::string path = BH_TRY(cgroups::resolve_path(spec.linux->cgroups_path, id));
    bool existed = ::access((*mount + path).c_str(), F_OK) == 0;
    auto made = cgroups::Cgroup::create(*mount, path);
    // Rootless: a cgroup tree nobody delegated to this user is not writable. Like runc and crun,
    // run without one unless the spec asks for limits, which nothing could then enforce.
    bool denied =
        !made && (made.error().code == EACCES || made.error().code == EPERM || made.error().code == EROFS);
    if (denied && rootless) {
      if (cgroups::requests_controllers(spec.linux->resources))
        return failf("linux.resources: a rootless container needs a cgroup delegated to uid {} to "
                     "enforce limits, and {} (run bulkhead inside a delegated cgroup, e.g. systemd-run "
                     "--user --scope -p Delegate=yes, or drop the limits)",
                     ::geteuid(), made.error().text());
      // Debug, not a warning: it is the normal case of rootless mode, and engines (conmon) report
      // the runtime's first stderr line as the error of a failed create.
      log_debug(ro,
                fmt::format("rootless container {}: {}; running without a cgroup", id, made.error().text()));
    } else {
      cgroup = BH_TRY(std::move(made));
      // clone3 into a frozen cgroup gives a child that never runs, and create would wait forever.
      // A cgroup someone else made and froze stays as it was.
      auto frozen = cgroup.frozen();
      if (!existed && (!frozen || *frozen))
        (void)cgroup.destroy();
      if (!frozen)
        return tl::unexpected(frozen.error());
      if (*frozen)
        return failf("linux.cgroupsPath: cgroup {} is frozen (cgroup.events: frozen 1, set on it or an "
                     "ancestor): thaw it or choose another cgroup",
                     cgroup.full_path());
      revert.add([cgroup] { (void)cgroup.destroy(); });
      for (const auto &w : cgroups::device_rule_warnings(
               spec.linux->resources ? spec.linux->resources->devices : std::vector<oci::DeviceCgroupRule>{}))
        log_warning(ro, w);
      // Limits and the device filter hold before any process enters the cgroup.
      BH_CHECK(cgroups::setup_container_cgroup(cgroup, *spec.linux, !rootless));
      cgroup_fd = BH_TRY(cgroup.open_dir());
      rec.cgroup_mount = *mount;
      rec.cgroup_path = path;
      log_debug(ro, fmt::format("create {}: cgroup {} ready (resources and device filter applied)", id,
                                cgroup.full_path()));
    }
  } else if (cgroups::requests_controllers(spec.linux->resources)) {
    return failf("linux.resources: {}: this host has no cgroup v2 controllers, and bulkhead supports "
                 "cgroup v2 only: boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1 on "
                 "the kernel command line)",
                 mount.error().text());
  } else {
    log_warning(ro, fmt::format("container {}: {}; running without a cgroup", id, mount.error().text()));
  }
  BH_CHECK(dir.save_first(rec));
  // exec takes its defaults (namespaces, confinement) from the config the container was made from,
  // not from a bundle that may have changed since.
  BH_CHECK(write_file_at(dir.fd(), "config.json", config_text, O_WRONLY | O_CREAT | O_EXCL, 0600));

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return failf_errno("sync socketpair");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);
  UniqueFd start_listener = BH_TRY(listen_start_socket(dir));
  UniqueFd pidfd_socket;
  if (!co.pidfd_socket.empty())
    pidfd_socket = BH_TRY(connect_unix_socket(co.pidfd_socket, "pidfd socket"));
  UniqueFd console;
  if (spec.process->terminal && console_fd < 0) {
    console = BH_TRY(connect_console_socket(co.console_socket));
    console_fd = console.get();
  }

  // The container's root in a user namespace may not reach a bind source that host root can (one
  // below a 0700 root-owned directory): open them now, before anything runs as the mapped ids.
  // Idmapped mounts are shifted here too, by host root. Rootless (euid != 0) there is nothing to
  // gain and no right to clone mount trees: the container's root is the caller, and it binds its
  // sources itself once in its user namespace.
  bool idmapped = std::any_of(spec.mounts.begin(), spec.mounts.end(), rootfs::is_idmapped);
  if (idmapped && ::geteuid() != 0)
    return failf("mounts: idmapped mounts need root (mount_setattr(MOUNT_ATTR_IDMAP) on a host "
                 "filesystem), and bulkhead runs as uid {}",
                 ::geteuid());
  std::vector<UniqueFd> bind_sources;
  bool in_userns = plan.creates(CLONE_NEWUSER) || plan.joins_flag(CLONE_NEWUSER);
  if ((in_userns || idmapped) && spec.linux->has_namespace(oci::NamespaceType::Mount) && ::geteuid() == 0)
    bind_sources = BH_TRY(
        rootfs::open_bind_sources(spec.mounts, bundle, spec.linux->uid_mappings, spec.linux->gid_mappings));

  const oci::Hooks &h = spec.hooks;
  InitArgs args;
  args.spec = &spec;
  args.namespaces = &plan;
  args.rootfs = rootfs;
  args.bundle = bundle;
  if (!rec.cgroup_path.empty())
    args.cgroup_dir = rec.cgroup_mount + rec.cgroup_path;
  args.id = id;
  args.rootless_parent = ::geteuid() != 0;
  args.sync_fd = child_end.get();
  args.start_listen_fd = start_listener.get();
  args.console_fd = spec.process->terminal ? console_fd : -1;
  args.security = &security;
  args.seccomp_listener_fd = seccomp_listener.get();
  for (const auto &fd : bind_sources)
    args.bind_source_fds.push_back(fd.get());
  args.parent_pid = ::getpid();
  args.intermediate = plan.joins_any();
  args.run_hooks_handshake = !h.prestart.empty() || !h.create_runtime.empty() || !h.create_container.empty();
  args.no_pivot = co.no_pivot;
  args.no_new_keyring = co.no_new_keyring;
  args.preserve_fds = co.listen_fds + co.preserve_fds;
  args.listen_fds = co.listen_fds;

  // Namespaces made at clone time; cgroup and time namespaces are made by init once it sits in
  // its cgroup, and with joins the intermediate makes them all in the right order.
  unsigned long flags = 0;
  if (!args.intermediate)
    flags = plan.create_flags & ~static_cast<unsigned long>(CLONE_NEWCGROUP | 0x80 /* CLONE_NEWTIME */);

  Child child;
  CloneResult cloned = clone_child(flags, cgroup_fd ? cgroup_fd.get() : -1);
  child.pid = static_cast<pid_t>(cloned.pid);
  args.wait_for_cgroup = (cgroup_fd && !cloned.in_cgroup) || scope.has_value();
  if (child.pid < 0)
    return failf_errno("clone of container init (flags {:#x})", flags);
  if (child.pid == 0) {
    parent_end.reset();
    container_init(args);
  }
  revert.add([&child] { kill_and_reap(child); });
  log_debug(ro, fmt::format("create {}: cloned {} pid {} (clone flags {:#x}{})", id,
                            args.intermediate ? "intermediate" : "init", child.pid, flags,
                            cloned.in_cgroup ? ", into its cgroup" : ""));
  child_end.reset();
  start_listener.reset();
  console.reset();
  seccomp_listener.reset();
  bind_sources.clear();

  if (scope) {
    oci::Resources none;
    const oci::Resources &res = spec.linux->resources ? *spec.linux->resources : none;
    auto props = BH_TRY(cgroups::systemd_properties(res));
    auto path = BH_TRY(bus->start_scope(*scope, child.pid, props, "bulkhead container " + id));
    // Undone before the child is killed (reverts run last-added first), so kill it here first:
    // the scope's stop would otherwise wait for a process that has not run yet.
    revert.add([&bus, &scope, &child] {
      kill_and_reap(child);
      (void)bus->stop_unit(scope->unit);
    });
    cgroup = cgroups::Cgroup(systemd_mount, path);
    rec.cgroup_path = path;
    // Delegate=yes: the scope is ours to write. Everything systemd has no property for (and the
    // device filter) is written as the cgroupfs driver does, before init runs.
    BH_CHECK(cgroups::setup_container_cgroup(cgroup, *spec.linux, !rootless));
    BH_CHECK(dir.save(rec));
    log_debug(ro, fmt::format("create {}: systemd scope {} in {} ready, cgroup {} ({} unit properties)", id,
                              scope->unit, scope->slice, cgroup.full_path(), props.size()));
    BH_CHECK(send_msg(parent_end.get(), Msg::Go, 0, cgroup.full_path()));
  } else if (args.wait_for_cgroup) {
    BH_CHECK(cgroup.add_process(child.pid));
    BH_CHECK(send_msg(parent_end.get(), Msg::Go));
  }
  if (spec.process->oom_score_adj)
    BH_CHECK(write_file_at(AT_FDCWD, fmt::format("/proc/{}/oom_score_adj", child.pid),
                           std::to_string(*spec.process->oom_score_adj), O_WRONLY));

  Child init = args.intermediate ? Child{} : child;
  revert.add([&init] { kill_and_reap(init); });
  for (;;) {
    auto msg = recv_msg(parent_end.get());
    if (!msg) {
      if (msg.error().code == EPIPE) {
        pid_t dead = init.pid > 0 ? init.pid : child.pid;
        auto text = describe_exit(dead);
        (dead == init.pid ? init : child).reaped = true;
        return fail(text);
      }
      return tl::unexpected(msg.error());
    }
    switch (msg->type) {
    case Msg::InitPid:
      init.pid = msg->value;
      while (::waitpid(child.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      child.reaped = true;
      break;
    case Msg::UsernsReady: {
      auto mapped = ns::write_id_maps(child.pid, spec.linux->uid_mappings, spec.linux->gid_mappings);
      if (!mapped) {
        send_error(parent_end.get(), mapped.error());
        return tl::unexpected(mapped.error());
      }
      BH_CHECK(send_msg(parent_end.get(), Msg::UsernsMapped));
      break;
    }
    case Msg::MountsReady: {
      rec.init.pid = init.pid;
      log_debug(ro, fmt::format("create {}: mounts ready; running {} prestart, {} createRuntime hook(s)", id,
                                h.prestart.size(), h.create_runtime.size()));
      // "created", as crun passes and the runtime-spec's conformance tests expect (runc says
      // "creating"): the container exists and init waits; only the hooks are still to come.
      auto json = state_json(rec, "created");
      auto hooks = run_hooks(h.prestart, json, "prestart", bundle);
      if (hooks)
        hooks = run_hooks(h.create_runtime, json, "createRuntime", bundle);
      if (!hooks) {
        send_error(parent_end.get(), hooks.error());
        return tl::unexpected(hooks.error());
      }
      BH_CHECK(send_msg(parent_end.get(), Msg::HooksDone, 0, json));
      break;
    }
    case Msg::Error:
      return fail(msg->payload, msg->code);
    case Msg::Ready: {
      auto stat = BH_TRY(read_proc_stat(init.pid));
      rec.init = ProcessId{init.pid, stat.start_time};
      rec.creating = false;
      BH_CHECK(dir.save(rec));
      if (!co.pid_file.empty())
        BH_CHECK(write_file_atomic(co.pid_file, std::to_string(init.pid)));
      if (pidfd_socket)
        BH_CHECK(send_pidfd(pidfd_socket.get(), init.pid));
      revert.commit();
      log_debug(ro, fmt::format("create {}: created, init pid {} waits for start", id, init.pid));
      return CreatedContainer{init.pid, spec.process->terminal};
    }
    default:
      return failf("sync: unexpected message {} from container init", static_cast<int>(msg->type));
    }
  }
}

} // namespace bulkhead::runtime
