// Phase 1 of the monitor: from the daemon's launch line to a running container, or to nothing at
// all (every step registers its undo in a Revert).
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "daemon/monitor.hpp"
#include "daemon/monitor_console_log.hpp"
#include "daemon/monitor_io.hpp"
#include "daemon/spec_builder.hpp"
#include "runtime/container.hpp"
#include "runtime/process_id.hpp"
#include "security/capabilities.hpp"
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
  ro.log = [](LogLevel level, const std::string &m) {
    if (level != LogLevel::Debug)
      warn(m);
  };
  CreateOptions co;
  co.bundle = l.bundle;
  auto created = runtime::create_container(ro, name, co, console_theirs.get());
  if (!created)
    return tl::unexpected(with_context(created.error(), "creating container " + name));
  revert.add([ro, name] {
    if (auto r = Runtime(ro).remove(name, DeleteOptions{true}); !r)
      warn(r.error().text());
  });
  console_theirs.reset();
  UniqueFd master = BH_TRY(receive_fd(console_ours.get(), "the console pty master"));
  w.init_pid = created->pid;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, w.init_pid, 0)));
  if (!pidfd)
    return failf_errno("pidfd_open of container init {}", w.init_pid);
  // Between create and start init is blocked, so the pid cannot have been reused yet.
  w.init_start_time = BH_TRY(runtime::read_proc_stat(w.init_pid)).start_time;
  if (!l.config.nets.empty())
    BH_CHECK(network_step(control_fd, w.init_pid));
  if (auto started = Runtime(ro).start(name); !started)
    return tl::unexpected(with_context(started.error(), "starting container " + name));
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
