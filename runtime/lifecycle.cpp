// start, state, kill, delete and list, plus the Runtime facade that the CLI, the daemon and
// embedders share.
#include <csignal>
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"
#include "cgroups/cgroup.hpp"
#include "cgroups/systemd_scope.hpp"
#include "runtime/container.hpp"
#include "runtime/hooks.hpp"
#include "runtime/rootless.hpp"

namespace bulkhead::runtime {

void log_warning(const RuntimeOptions &ro, const std::string &msg) {
  if (ro.log)
    ro.log(LogLevel::Warning, msg);
}

void log_debug(const RuntimeOptions &ro, const std::string &msg) {
  if (ro.log)
    ro.log(LogLevel::Debug, msg);
}

namespace {

bool cgroup_frozen(const ContainerRecord &rec) {
  if (rec.cgroup_path.empty())
    return false;
  auto f = read_file(rec.cgroup_mount + rec.cgroup_path + "/cgroup.freeze");
  return f && !f->empty() && (*f)[0] == '1';
}

cgroups::Cgroup cgroup_of(const ContainerRecord &rec) {
  if (rec.cgroup_path.empty())
    return {};
  return cgroups::Cgroup(rec.cgroup_mount, rec.cgroup_path);
}

} // namespace

std::string compute_status(const ContainerDir &dir, const ContainerRecord &rec) {
  if (rec.creating)
    return lock_is_free(dir) ? "stopped" : "creating";
  if (!is_alive(rec.init))
    return "stopped";
  if (cgroup_frozen(rec))
    return "paused";
  if (::faccessat(dir.fd(), "start.sock", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return "created";
  return "running";
}

oci::State to_state(const ContainerRecord &rec, const std::string &status) {
  oci::State s;
  s.id = rec.id;
  s.status = status;
  s.pid = status == "stopped" ? 0 : rec.init.pid;
  s.bundle = rec.bundle;
  s.rootfs = rec.rootfs;
  s.created = rec.created;
  s.owner = rec.owner;
  s.annotations = rec.annotations;
  return s;
}

std::string state_json(const ContainerRecord &rec, const std::string &status) {
  return oci::state_to_json(to_state(rec, status), false);
}

Status start_container(const RuntimeOptions &ro, const std::string &id) {
  StateStore store(ro.root);
  ContainerDir dir = BH_TRY(store.open(id));
  ContainerRecord rec = BH_TRY(dir.load());
  auto status = compute_status(dir, rec);
  if (status != "created")
    return failf("container {:?} cannot be started: it is {} (only a created container can be started)", id,
                 status);

  UniqueFd conn(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!conn)
    return failf_errno("creating socket");
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  auto path = fmt::format("/proc/self/fd/{}/start.sock", dir.fd());
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(conn.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
    return failf_errno("starting container {:?}: container init is gone", id);
  ::unlinkat(dir.fd(), "start.sock", 0);
  log_debug(ro, fmt::format("start {}: releasing init (pid {})", id, rec.init.pid));
  auto json = state_json(rec, "created");
  if (::send(conn.get(), json.data(), json.size(), MSG_NOSIGNAL) < 0)
    return failf_errno("starting container {:?}", id);
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(conn.get(), buf, sizeof buf, 0)) < 0)
    if (errno != EINTR)
      return failf_errno("starting container {:?}", id);
  if (n > 0)
    return failf("starting container {:?}: {}", id, std::string_view(buf, static_cast<size_t>(n)));

  log_debug(ro, fmt::format("start {}: init runs the process; {} poststart hook(s)", id,
                            rec.hooks.poststart.size()));
  auto hooks = run_hooks(rec.hooks.poststart, state_json(rec, "running"), "poststart");
  if (!hooks)
    log_warning(ro, hooks.error().text());
  return {};
}

Status delete_container(const RuntimeOptions &ro, const std::string &id, bool force) {
  StateStore store(ro.root);
  auto opened = store.open(id);
  // As runc: engines run `delete --force` blindly after a failed create; a container that is
  // already gone is then no error.
  if (!opened && force && !store.may_exist(id))
    return {};
  ContainerDir dir = BH_TRY(std::move(opened));
  auto loaded = dir.load();
  if (!loaded) {
    if (!force)
      return tl::unexpected(loaded.error());
    return dir.remove(); // an unreadable record: --force clears it
  }
  ContainerRecord &rec = *loaded;
  // We hold the lock, so a record still marked creating belongs to a create that died.
  std::string status = rec.creating ? "stopped" : compute_status(dir, rec);
  if ((status == "running" || status == "paused") && !force)
    return failf("container {:?} cannot be deleted: it is {} (use --force)", id, status);

  // compute_status has just read /proc/<pid>/stat; a died create's record was not looked at.
  bool alive = rec.creating ? is_alive(rec.init) : status != "stopped";
  auto cg = cgroup_of(rec);
  log_debug(ro, fmt::format("delete {}: it is {}{}; cgroup {}", id, status, force ? " (--force)" : "",
                            cg.empty_path() ? "none" : cg.full_path()));
  if (alive || (!cg.empty_path() && cg.populated().value_or(false))) {
    // cgroup2 delivers SIGKILL to frozen tasks too, so a paused container needs no thaw first.
    bool killed_all = !cg.empty_path() && cg.signal_all(SIGKILL).has_value();
    // Every process of a created container is in its cgroup; a create that died may have left
    // init outside it (before cgroup.procs was written).
    if (alive && (!killed_all || rec.creating))
      (void)send_signal(rec.init, SIGKILL);
    auto exited = wait_exit(rec.init, 10000);
    if (exited && !*exited)
      return failf("container {:?}: init (pid {}) did not exit after SIGKILL", id, rec.init.pid);
  }
  if (auto manager = systemd_manager_of(rec.cgroup_driver); manager && !rec.systemd_unit.empty()) {
    // The scope goes with its cgroup: stopped, reset if it failed, unloaded. Without systemd (a
    // reboot into another init, say) only --force goes on and clears the rest.
    auto bus = cgroups::SystemdBus::connect(*manager);
    Status stopped = bus ? bus->stop_unit(rec.systemd_unit) : Status(tl::unexpected(bus.error()));
    if (!stopped) {
      if (!force)
        return tl::unexpected(with_context(stopped.error(), fmt::format("deleting container {:?}", id)));
      log_warning(ro, fmt::format("delete {} --force: {}", id, stopped.error().text()));
    } else {
      log_debug(ro, fmt::format("delete {}: systemd unit {} stopped and unloaded", id, rec.systemd_unit));
    }
  }
  BH_CHECK(cg.destroy());
  log_debug(ro, fmt::format("delete {}: processes gone, cgroup removed", id));
  if (!rec.creating) {
    auto hooks = run_hooks(rec.hooks.poststop, state_json(rec, "stopped"), "poststop");
    if (!hooks)
      log_warning(ro, hooks.error().text());
  }
  return dir.remove();
}

} // namespace bulkhead::runtime

namespace bulkhead {

using namespace runtime;

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {}

Result<int> Runtime::create(const std::string &id, const CreateOptions &options) {
  auto c = BH_TRY(create_container(options_, id, options));
  return c.pid;
}

Status Runtime::start(const std::string &id) { return start_container(options_, id); }

Result<oci::State> Runtime::state(const std::string &id) {
  StateStore store(options_.root);
  ContainerDir dir = BH_TRY(store.open_unlocked(id));
  ContainerRecord rec = BH_TRY(dir.load());
  return to_state(rec, compute_status(dir, rec));
}

Status Runtime::kill(const std::string &id, int signal, bool all) {
  StateStore store(options_.root);
  ContainerDir dir = BH_TRY(store.open(id));
  ContainerRecord rec = BH_TRY(dir.load());
  auto status = compute_status(dir, rec);
  if (status == "stopped" || status == "creating")
    return failf("container {:?} is not running (it is {})", id, status);
  log_debug(options_, fmt::format("kill {}: signal {} to {}", id, signal,
                                  all && !rec.cgroup_path.empty()
                                      ? "every process of " + rec.cgroup_mount + rec.cgroup_path
                                      : fmt::format("init (pid {})", rec.init.pid)));
  if (all && !rec.cgroup_path.empty()) {
    if (signal == SIGKILL)
      (void)write_file_at(AT_FDCWD, rec.cgroup_mount + rec.cgroup_path + "/cgroup.freeze", "0", O_WRONLY);
    return cgroup_of(rec).signal_all(signal);
  }
  return send_signal(rec.init, signal);
}

Status Runtime::remove(const std::string &id, const DeleteOptions &options) {
  return delete_container(options_, id, options.force);
}

Result<std::vector<oci::State>> Runtime::list() {
  StateStore store(options_.root);
  std::vector<oci::State> out;
  for (const auto &id : BH_TRY(store.list_ids())) {
    auto dir = store.open_unlocked(id);
    if (!dir)
      continue; // deleted meanwhile
    auto rec = dir->load();
    if (!rec)
      continue;
    out.push_back(to_state(*rec, compute_status(*dir, *rec)));
  }
  return out;
}

} // namespace bulkhead
