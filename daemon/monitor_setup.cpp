// Phase 1 of the monitor: from the daemon's launch line to a running container, or to nothing at
// all (every step registers its undo in a Revert).
#include <csignal>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <utility>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "cgroups/cgroup.hpp"
#include "daemon/monitor.hpp"
#include "daemon/monitor_checkpoint.hpp"
#include "daemon/monitor_console_log.hpp"
#include "daemon/monitor_io.hpp"
#include "daemon/spec_builder.hpp"
#include "namespaces/namespace_holder.hpp"
#include "runtime/container.hpp"
#include "runtime/process_id.hpp"
#include "security/capabilities.hpp"
#include "storage/idmapped.hpp"
#include "storage/overlay.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

void warn(const std::string &m) { (void)write_all(STDERR_FILENO, m + "\n", "stderr"); }

Status make_dir(const std::string &path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
    return failf_errno("creating {}", path);
  return {};
}

// A capability outside our own bounding set cannot be granted (capset fails with EPERM): hosts
// that run the daemon without some (a container host without CAP_SYS_RESOURCE, say) get system
// containers without it rather than none at all.
void drop_unavailable_capabilities(json &spec) {
  auto &caps = spec["process"]["capabilities"];
  for (auto &[set, list] : caps.items()) {
    json kept = json::array();
    for (const auto &name : list) {
      auto number = security::capability_from_name(name.get<std::string>());
      if (number && ::prctl(PR_CAPBSET_READ, *number) != 1) {
        if (set == "bounding")
          warn(fmt::format("system container: {} is not in the monitor's bounding set; left out",
                           name.get<std::string>()));
        continue;
      }
      kept.push_back(name);
    }
    list = std::move(kept);
  }
}

// A container with NICs: tell the daemon init exists (its netns too) and wait for "start" while the
// daemon puts the NICs into that netns; anything else undoes the container.
Status network_step(int control_fd, int init_pid) {
  BH_CHECK(send_line(control_fd, json{{"created", true}, {"pid", init_pid}}.dump()));
  std::string line = BH_TRY(context(read_line(control_fd, 1 << 16), "waiting for the daemon's start line"));
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("the daemon's start line is not JSON");
  if (j.value("start", false))
    return {};
  return fail(j.value("abort", std::string("the daemon did not say start")));
}

// lo up in a restored container's network namespace, made by a holder (ns::NamespaceHolder) so
// the daemon can put the NICs there by pid before CRIU restores the tree into it: 0 or an errno.
int loopback_up() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (!s || ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0)
    return errno ? errno : EIO;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0 ? 0 : (errno ? errno : EIO);
}

// lo up in the network namespace of `pid` (a restored unprivileged container's, made by CRIU):
// this single-threaded monitor steps in and back out.
Status loopback_up_in(pid_t pid) {
  UniqueFd ours(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  std::string path = fmt::format("/proc/{}/ns/net", pid);
  UniqueFd theirs(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ours || !theirs)
    return failf_errno("opening the network namespaces to bring lo up ({})", path);
  if (::setns(theirs.get(), CLONE_NEWNET) < 0)
    return failf_errno("entering {}", path);
  int err = loopback_up();
  if (::setns(ours.get(), CLONE_NEWNET) < 0) // cannot stay in the container's namespace
    ::_exit(3);
  if (err)
    return fail(fmt::format("bringing lo up in {}", path), err);
  return {};
}

// An unprivileged container's rootfs: the template (one copy, owned by 0 on disk) through a mount
// idmapped into the container's range as the overlay's lower layer (overlayfs takes idmapped
// layers since Linux 5.19), over an upper whose top belongs to the range's root. The idmapped
// mount sits on <bundle>/lower only while the overlay is mounted: overlayfs keeps a private clone
// of each layer, so it is detached right after and nothing is left of it to clean up.
Status mount_unprivileged_rootfs(const MonitorLaunch &l) {
  const IdMap &m = *l.config.idmap;
  if (::mkdir(l.upper.c_str(), 0755) < 0 && errno != EEXIST)
    return failf_errno("creating {}", l.upper);
  if (::lchown(l.upper.c_str(), m.uid, m.gid) < 0)
    return failf_errno("chown of {} to {}:{}", l.upper, m.uid, m.gid);
  UniqueFd userns = BH_TRY(storage::make_userns_fd(m.uid, m.gid, m.size));
  std::string lower = l.bundle + "/lower";
  (void)storage::unmount_overlay(lower); // a monitor killed in between may have left one
  BH_CHECK(context(storage::mount_idmapped(l.lower, lower, userns.get()), "the template layer"));
  auto mounted = storage::mount_overlay({lower, l.upper, l.work, l.rootfs});
  if (auto r = storage::unmount_overlay(lower); !r)
    warn(r.error().text());
  ::rmdir(lower.c_str());
  return mounted;
}

// An init that manages its own cgroup subtree (systemd) runs as the range's root on the host in
// an unprivileged container: it must own its cgroup directory and the files the cgroup v2
// delegation model names (cgroup.procs, cgroup.threads, cgroup.subtree_control), as runc and LXC
// hand them over. A failure only warns: inits that leave cgroups alone (busybox) run without.
void delegate_cgroup(pid_t init_pid, const IdMap &m) {
  const std::string where = fmt::format("/proc/{}/cgroup", init_pid);
  auto text = read_file(where);
  std::string path = text ? cgroups::unified_cgroup_from(*text, where).value_or("") : "";
  std::string mount = cgroups::cgroup2_mount().value_or("");
  if (path.empty() || mount.empty()) {
    warn(fmt::format("unprivileged container: no cgroup v2 directory of init {} to hand over", init_pid));
    return;
  }
  std::string dir = mount + path;
  for (const char *f : {"", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"}) {
    std::string p = dir + f;
    if (::lchown(p.c_str(), m.uid, m.gid) < 0 && errno != ENOENT)
      warn(fmt::format("unprivileged container: chown of {} to {}:{}: {}", p, m.uid, m.gid,
                       std::strerror(errno)));
  }
}

Result<WatchState> build_and_start(const MonitorLaunch &l, int control_fd) {
  const std::string &name = l.config.name;
  Revert revert;
  WatchState w;
  w.name = name;
  w.oci_root = l.oci_root;
  w.bundle = l.bundle;
  w.rootfs = l.rootfs;
  w.socket = l.socket;
  w.log = l.log;
  w.exit_file = l.exit_file;
  w.log_max = l.log_max;
  w.monitor_pid = ::getpid();
  w.monitor_start_time = BH_TRY(runtime::read_proc_stat(w.monitor_pid)).start_time;
  w.gid = group_id("bulkhead");

  BH_CHECK(make_dir(l.bundle, 0700));
  if (l.config.idmap)
    BH_CHECK(mount_unprivileged_rootfs(l));
  else
    BH_CHECK(storage::mount_overlay({l.lower, l.upper, l.work, l.rootfs}));
  revert.add([rootfs = l.rootfs] {
    if (auto r = storage::unmount_overlay(rootfs); !r)
      warn(r.error().text());
  });
  SpecContext ctx{l.rootfs, l.cgroups_path, l.init_path, l.lxcfs_dir};
  json spec = build_system_spec(l.config, ctx);
  drop_unavailable_capabilities(spec);
  BH_CHECK(write_file_atomic(l.bundle + "/config.json", spec.dump(2), 0600));

  UniqueFd log_fd = BH_TRY(ConsoleLog::open(l.log));
  UniqueFd listener = BH_TRY(listen_control_socket(l.socket, w.gid));
  revert.add([socket = l.socket] { ::unlink(socket.c_str()); });

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return failf_errno("console socketpair");
  UniqueFd console_ours(sv[0]), console_theirs(sv[1]);
  RuntimeOptions ro;
  ro.root = l.oci_root;
  ro.systemd_cgroup = l.systemd_cgroup;
  ro.log = [](LogLevel level, const std::string &m) {
    if (level != LogLevel::Debug)
      warn(m);
  };
  auto remove = [ro, name] {
    if (auto r = Runtime(ro).remove(name, DeleteOptions{true}); !r)
      warn(r.error().text());
  };
  UniqueFd master, pidfd;
  if (l.restore_images.empty()) {
    CreateOptions co;
    co.bundle = l.bundle;
    auto created = runtime::create_container(ro, name, co, console_theirs.get());
    if (!created)
      return tl::unexpected(with_context(created.error(), "creating container " + name));
    revert.add(remove);
    console_theirs.reset();
    master = BH_TRY(receive_fd(console_ours.get(), "the console pty master"));
    w.init_pid = created->pid;
    pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, w.init_pid, 0)));
    if (!pidfd)
      return failf_errno("pidfd_open of container init {}", w.init_pid);
    // Between create and start init is blocked, so the pid cannot have been reused yet.
    w.init_start_time = BH_TRY(runtime::read_proc_stat(w.init_pid)).start_time;
    if (l.config.idmap)
      delegate_cgroup(w.init_pid, *l.config.idmap);
    if (!l.config.nets.empty())
      BH_CHECK(network_step(control_fd, w.init_pid));
    if (auto started = Runtime(ro).start(name); !started)
      return tl::unexpected(with_context(started.error(), "starting container " + name));
  } else {
    // The NICs go into a fresh namespace first (the daemon finds it by the holder's pid, as it
    // finds a created init's); CRIU then restores the tree into it, so a restored socket finds
    // its addresses in place.
    // A restore is rare and slow (CRIU): its steps go to the monitor's log.
    ro.log = [](LogLevel, const std::string &m) { warn(m); };
    // Killed once the tree holds the namespace (or on any failure).
    std::optional<ns::NamespaceHolder> holder;
    runtime::RestoreFds fds{console_theirs.get(), -1, {}};
    if (l.config.idmap) {
      // An unprivileged container's network namespace must belong to its user namespace, which
      // only exists once CRIU made it: the NICs go in when CRIU says the namespaces are there,
      // before it restores the sockets.
      fds.setup_netns = [&](pid_t pid) -> Status {
        BH_CHECK(loopback_up_in(pid));
        if (!l.config.nets.empty())
          BH_CHECK(network_step(control_fd, pid));
        return {};
      };
    } else {
      holder.emplace(BH_TRY(ns::NamespaceHolder::spawn(CLONE_NEWNET, "net", loopback_up)));
      if (!l.config.nets.empty())
        BH_CHECK(network_step(control_fd, holder->pid()));
      fds.netns_fd = holder->fd();
    }
    auto restored = runtime::restore_container(
        ro, name, system_restore_options(l.restore_images, l.bundle, l.bundle + "/criu-restore"), fds);
    if (!restored)
      return tl::unexpected(
          with_context(restored.error(), "restoring container " + name + " from " + l.restore_images));
    revert.add(remove);
    console_theirs.reset();
    master = BH_TRY(receive_fd(console_ours.get(), "the console pty master"));
    auto state = BH_TRY(Runtime(ro).state(name));
    w.init_pid = state.pid;
    pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, w.init_pid, 0)));
    if (!pidfd)
      return failf_errno("pidfd_open of restored container init {}", w.init_pid);
    // CRIU restored the tree as our child: its pid cannot be reused before we reap it.
    w.init_start_time = BH_TRY(runtime::read_proc_stat(w.init_pid)).start_time;
    if (l.config.idmap)
      delegate_cgroup(w.init_pid, *l.config.idmap);
  }
  w.started_unix = unix_now();
  BH_CHECK(write_durable(l.state_file, json{{"monitor_pid", w.monitor_pid},
                                            {"monitor_start_time", w.monitor_start_time},
                                            {"init_pid", w.init_pid},
                                            {"init_start_time", w.init_start_time},
                                            {"started_unix", w.started_unix}}
                                           .dump()));
  revert.commit();
  w.pty_master = master.release();
  w.listen_fd = listener.release();
  w.init_pidfd = pidfd.release();
  w.log_fd = log_fd.release();
  return w;
}

} // namespace

Result<WatchState> setup_container(int control_fd) {
  auto setup = [&]() -> Result<WatchState> {
    std::string line = BH_TRY(context(read_line(control_fd, 1 << 20), "reading the launch line on fd 3"));
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded())
      return fail("the launch line on fd 3 is not JSON");
    MonitorLaunch launch = BH_TRY(launch_from_json(j));
    return build_and_start(launch, control_fd);
  };
  auto w = setup();
  json reply = w ? json{{"ok", true}, {"pid", w->init_pid}, {"init_start_time", w->init_start_time}}
                 : json{{"ok", false}, {"error", w.error().text()}};
  // The daemon may be gone (crashed, restarted): the container runs on, found via state_file.
  if (auto sent = send_line(control_fd, reply.dump()); !sent)
    warn("replying on fd 3: " + sent.error().text());
  return w;
}

} // namespace bulkhead::daemon
