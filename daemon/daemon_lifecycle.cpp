// The container lifecycle behind the API: create, start, stop, set, destroy, state changes.
#include <sys/stat.h>

#include <climits>
#include <unistd.h>

#include <csignal>
#include <regex>
#include <set>
#include <thread>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/container_disk.hpp"
#include "daemon/daemon.hpp"
#include "daemon/id_ranges.hpp"
#include "daemon/monitor_launcher.hpp"
#include "daemon/nic_host.hpp"
#include "daemon/nic_setup.hpp"
#include "daemon/request_fields.hpp"
#include "daemon/restore_lock.hpp"
#include "runtime/images_lent.hpp"
#include "runtime/process_id.hpp"
#include "storage/mountinfo.hpp"
#include "storage/overlay.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

Result<std::string> string_field(const json &j, const char *name) {
  if (!j.contains(name) || !j[name].is_string())
    return fail(fmt::format("\"{}\" is required and must be a string", name), EINVAL);
  return j[name].get<std::string>();
}

Result<std::optional<uint64_t>> memory_field(const json &v) {
  if (v.is_null())
    return std::optional<uint64_t>();
  uint64_t bytes = 0;
  if (v.is_number_unsigned())
    bytes = v.get<uint64_t>();
  else if (v.is_string())
    bytes = BH_TRY(parse_size(v.get<std::string>()));
  else
    return fail("\"memory\" must be a size such as \"256M\" or a number of bytes", EINVAL);
  // Below this a system container's init cannot even start; say so now rather than OOM later.
  if (bytes < (4u << 20))
    return fail(fmt::format("memory limit {} bytes is below the 4 MiB minimum", bytes), EINVAL);
  return std::optional<uint64_t>(bytes);
}

Result<std::optional<double>> cpus_field(const json &v) {
  if (v.is_null())
    return std::optional<double>();
  if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 4096)
    return fail("\"cpus\" must be a number of CPUs above 0 (e.g. 0.5)", EINVAL);
  return std::optional<double>(v.get<double>());
}

Result<std::optional<int64_t>> pids_field(const json &v) {
  if (v.is_null())
    return std::optional<int64_t>();
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    return fail("\"pids\" must be a whole number of processes, at least 1", EINVAL);
  return std::optional<int64_t>(v.get<int64_t>());
}

Result<std::vector<std::string>> string_list(const json &v, const char *name) {
  if (!v.is_array())
    return fail(fmt::format("\"{}\" must be an array of strings", name), EINVAL);
  std::vector<std::string> out;
  for (const auto &x : v) {
    if (!x.is_string())
      return fail(fmt::format("\"{}\" must be an array of strings", name), EINVAL);
    out.push_back(x.get<std::string>());
  }
  return out;
}

Status validate_hostname(const std::string &h) {
  static const std::regex re(R"(^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$)");
  if (!std::regex_match(h, re))
    return fail("invalid hostname \"" + h + "\"", EINVAL);
  return {};
}

Result<int> signal_number(const std::string &text) {
  if (text == "SIGRTMIN+3" || text == "RTMIN+3")
    return SIGRTMIN + 3;
  return parse_signal(text);
}

// The container's root (its range's base uid on the host) must reach its rootfs, which the runtime
// opens after entering the user namespace: every directory above <root>/containers must let
// others search it (o+x), as /var/lib does. Refused at create rather than as an EACCES at start.
Status check_searchable_by_ranges(const std::string &containers_dir, const std::string &what) {
  std::string path = containers_dir;
  while (!path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0)
      return failf_errno("{}: stat of {}", what, path);
    if (!(st.st_mode & S_IXOTH))
      return fail(
          fmt::format("{}: unprivileged containers need {} searchable by every uid (mode {:o} lacks "
                      "o+x): their root is an unprivileged uid on the host that must reach its rootfs "
                      "below it (chmod o+x {}, or create the container --privileged)",
                      what, path, st.st_mode & 07777, path),
          EACCES);
    auto slash = path.rfind('/');
    path = slash == 0 ? (path == "/" ? "" : "/") : path.substr(0, slash);
  }
  return {};
}

// CRIU restores an unprivileged container partly as the range's root, which reads a checkpoint's
// parent pages through the images' "parent" link (../../migrate-ID.pre/pre-N): every directory of
// this daemon's root on the way to the images and to each parent must be searchable (not
// readable) by it. Only those directories get o+x (0700 -> 0711); the images themselves are lent
// to the range by the runtime (runtime/images_lent.hpp).
Status searchable_for_restore(const std::string &root, const std::string &images) {
  auto open_up = [&](std::string dir) -> Status {
    while (dir.size() > root.size() && dir.starts_with(root + "/")) {
      struct stat st {};
      if (::lstat(dir.c_str(), &st) < 0)
        return failf_errno("{}", dir);
      if (S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) == 0 &&
          ::chmod(dir.c_str(), (st.st_mode & 07777) | S_IXGRP | S_IXOTH) < 0)
        return failf_errno("making {} searchable for the restore", dir);
      dir = dir.substr(0, dir.rfind('/'));
    }
    return {};
  };
  for (const auto &dir : BH_TRY(runtime::image_chain(images)))
    BH_CHECK(open_up(dir));
  return {};
}

// An unprivileged container's directory and bundle become searchable (0711, not readable) on the
// way to its rootfs, and its upper layer's top belongs to its root: overlayfs gives the rootfs's
// / the upper's owner, and files created inside land in the upper as the range's ids.
Status prepare_unprivileged_dirs(const ContainerPaths &paths, const ContainerConfig &c) {
  if (!c.idmap)
    return {};
  for (const auto &dir : {paths.dir, paths.bundle})
    if (::chmod(dir.c_str(), 0711) < 0)
      return failf_errno("chmod 0711 {}", dir);
  if (::lchown(paths.upper.c_str(), c.idmap->uid, c.idmap->gid) < 0)
    return failf_errno("chown of {} to {}:{}", paths.upper, c.idmap->uid, c.idmap->gid);
  return {};
}

bool is_active(const std::string &state) {
  return state == "running" || state == "frozen" || state == "starting" || state == "stopping";
}

} // namespace

Daemon::EntryPtr Daemon::find(const std::string &name) {
  std::lock_guard lock(table_mu_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

Result<Daemon::EntryPtr> Daemon::get(const std::string &name) {
  if (auto e = find(name))
    return e;
  return fail("container \"" + name + "\" does not exist", ENOENT);
}

Result<json> Daemon::create(const json &req) {
  BH_CHECK(
      known_fields(req,
                   {"name", "template", "memory", "cpus", "pids", "hostname", "env", "restart", "onboot",
                    "init", "start", "nets", "disk", "disk_inodes", "privileged", "unprivileged", "idmap"},
                   "create"));
  // Counted before the flag is read: see evacuating_ in daemon.hpp.
  ++creating_;
  struct Uncount {
    std::atomic<int> &n;
    ~Uncount() { --n; }
  } uncount{creating_};
  ContainerConfig c;
  c.name = BH_TRY(string_field(req, "name"));
  BH_CHECK(refuse_while_evacuating("creating " + c.name));
  BH_CHECK(storage::validate_name("container", c.name));
  c.template_name = BH_TRY(string_field(req, "template"));
  auto tmpl = templates_.get(c.template_name);
  if (!tmpl)
    return fail("template \"" + c.template_name + "\" does not exist",
                ENOENT == tmpl.error().code ? EINVAL : EINVAL);
  if (req.contains("memory"))
    c.limits.memory_bytes = BH_TRY(memory_field(req["memory"]));
  if (req.contains("cpus"))
    c.limits.cpus = BH_TRY(cpus_field(req["cpus"]));
  if (req.contains("pids"))
    c.limits.pids = BH_TRY(pids_field(req["pids"]));
  c.hostname = req.contains("hostname") ? BH_TRY(string_field(req, "hostname")) : c.name;
  BH_CHECK(validate_hostname(c.hostname));
  if (req.contains("env")) {
    c.env = BH_TRY(string_list(req["env"], "env"));
    for (const auto &kv : c.env)
      if (kv.find('=') == std::string::npos || kv[0] == '=')
        return fail("env entry \"" + kv + "\" is not KEY=VALUE", EINVAL);
  }
  if (req.contains("restart"))
    c.restart = BH_TRY(parse_restart_policy(BH_TRY(string_field(req, "restart"))));
  if (req.contains("onboot")) {
    if (!req["onboot"].is_boolean())
      return fail("\"onboot\" must be true or false", EINVAL);
    c.onboot = req["onboot"].get<bool>();
  }
  if (req.contains("init")) {
    c.init = BH_TRY(string_list(req["init"], "init"));
    if (c.init.empty() || c.init[0].empty() || c.init[0][0] != '/')
      return fail("\"init\" must start with an absolute path", EINVAL);
  }
  bool start_now = false;
  if (req.contains("start")) {
    if (!req["start"].is_boolean())
      return fail("\"start\" must be true or false", EINVAL);
    start_now = req["start"].get<bool>();
  }
  bool unprivileged = options_.unprivileged_default;
  for (const char *f : {"privileged", "unprivileged"})
    if (req.contains(f) && !req[f].is_boolean())
      return fail(fmt::format("\"{}\" must be true or false", f), EINVAL);
  if (req.value("privileged", false) && req.value("unprivileged", false))
    return fail("a container is either privileged or unprivileged, not both", EINVAL);
  if (req.contains("privileged"))
    unprivileged = !req["privileged"].get<bool>();
  if (req.contains("unprivileged"))
    unprivileged = req["unprivileged"].get<bool>();
  // An exact range (docs/unprivileged.md): how a container arriving with its memory keeps its ids.
  std::optional<IdMap> want_ids;
  if (req.contains("idmap")) {
    want_ids = idmap_from_json(req["idmap"]);
    if (!want_ids || want_ids->size != kIdRangeSize)
      return fail(fmt::format("\"idmap\" must be {{\"uid\": N, \"gid\": N, \"size\": {}}}", kIdRangeSize),
                  EINVAL);
    if (req.value("privileged", false))
      return fail("\"idmap\" is the id range of an unprivileged container, not of a privileged one", EINVAL);
    unprivileged = true;
  }
  std::optional<IdPool> id_pool;
  if (unprivileged) {
    id_pool = BH_TRY(context(load_id_pool(options_.id_range, options_.subuid_file, options_.subgid_file),
                             "creating " + c.name));
    BH_CHECK(check_searchable_by_ranges(records_.root() + "/containers", "creating " + c.name));
  }
  c.created_unix = now_unix_ms() / 1000;
  c.storage = options_.storage;
  c.disk = BH_TRY(disk_limits_for_create(c.storage, req, options_.disk_default));
  const ContainerDisk *disk = BH_TRY(container_disk(c.storage));

  auto e = std::make_shared<Entry>();
  e->rec.config = c;
  {
    std::lock_guard lock(table_mu_);
    if (entries_.count(c.name))
      return fail("container \"" + c.name + "\" already exists", EEXIST);
    // Under the table lock, so two creates never take one range.
    if (id_pool) {
      std::vector<IdMap> used = used_id_ranges_locked();
      auto range = want_ids ? claim_id_range(*id_pool, used, *want_ids) : allocate_id_range(*id_pool, used);
      if (!range)
        return fail("creating " + c.name + ": " + range.error().message, range.error().code);
      e->rec.config.idmap = e->idmap = *range;
    }
    // Under the table lock, so a concurrent network rm sees this container's NICs.
    if (req.contains("nets"))
      e->rec.config.nets = BH_TRY(allocate_nics(networks_, c.name, req["nets"]));
    entries_[c.name] = e; // reserves the name; removed again below if anything fails
  }
  std::unique_lock lock(e->mu);
  auto paths = records_.paths(c.name);
  bool made_disk = false;
  // In a cluster the name is claimed first: names are unique there (a placement per name).
  if (auto r = claim_placement(c.name); !r) {
    release_nics(networks_, c.name, e->rec.config.nets);
    std::lock_guard tl(table_mu_);
    entries_.erase(c.name);
    return tl::unexpected(r.error());
  }
  auto undo = [&] {
    release_placement(c.name);
    release_nics(networks_, c.name, e->rec.config.nets);
    if (made_disk)
      (void)disk->detach(paths);
    (void)remove_tree(paths.dir);
    std::lock_guard tl(table_mu_);
    entries_.erase(c.name);
  };
  for (const auto &dir : {paths.dir, paths.bundle}) {
    if (::mkdir(dir.c_str(), 0700) < 0) {
      auto err = failf_errno("creating {}", dir);
      undo();
      return err;
    }
    if (dir == paths.dir) {
      if (auto r = disk->create(paths, c.disk); !r) { // leaves nothing of itself on failure
        undo();
        return fail("creating " + c.name + ": " + r.error().message, r.error().code);
      }
      made_disk = true;
    }
  }
  if (auto r = prepare_unprivileged_dirs(paths, e->rec.config); !r) {
    undo();
    return fail("creating " + c.name + ": " + r.error().message, r.error().code);
  }
  if (auto r = save_locked(*e); !r) {
    undo();
    return tl::unexpected(r.error());
  }
  events_.publish("container-created", c.name);
  if (start_now) {
    if (auto r = start_locked(*e, lock); !r)
      return tl::unexpected(r.error()); // the container exists, stopped, with the error recorded
  }
  return info_locked(*e);
}

json Daemon::monitor_request(const ContainerRecord &rec, const storage::TemplateInfo &tmpl,
                             const std::string &restore_images) const {
  auto paths = records_.paths(rec.config.name);
  ContainerConfig config = rec.config;
  if (config.stop_signal.empty())
    config.stop_signal = tmpl.stop_signal;
  json request = {{"config", to_json(config)},
                  {"lower", templates_.rootfs_path(rec.config.template_name)},
                  {"upper", paths.upper},
                  {"work", paths.work},
                  {"rootfs", paths.rootfs},
                  {"bundle", paths.bundle},
                  {"oci_root", options_.root + "/oci"},
                  {"cgroups_path", cgroups_.cgroups_path(rec.config.name)},
                  {"systemd_cgroup", cgroups_.systemd},
                  {"init_path", tmpl.init.empty() ? std::string("/sbin/init") : tmpl.init},
                  {"lxcfs_dir", lxcfs_ready_ ? options_.lxcfs_dir : std::string()},
                  {"socket", paths.socket},
                  {"log", paths.log},
                  {"log_max", options_.log_max},
                  {"state_file", paths.monitor_state},
                  {"exit_file", paths.exit_file}};
  if (!restore_images.empty())
    request["restore_images"] = restore_images;
  return request;
}

Status Daemon::start(const std::string &name, bool stateless) {
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  return start_locked(*e, lock, {}, stateless);
}

Status Daemon::start_locked(Entry &e, std::unique_lock<std::mutex> &lock,
                            const std::string &restore_images_given, bool stateless) {
  auto &s = e.rec.status;
  const auto &name = e.rec.config.name;
  if (s.state == "running" || s.state == "frozen" || s.state == "stopping" || e.watch_fd)
    return fail("container \"" + name + "\" is already " + s.state, EBUSY);
  if (!s.fenced_by.empty())
    return fail(fmt::format("container \"{}\" is fenced: the cluster placed it on host {} (it failed over "
                            "there), so this copy may not run; destroy it here",
                            name, s.fenced_by),
                EBUSY);
  auto tmpl = templates_.get(e.rec.config.template_name);
  if (!tmpl)
    return fail("starting " + name + ": its template \"" + e.rec.config.template_name + "\" is gone", ENOENT);
  auto paths = records_.paths(name);
  std::string restore_images = restore_images_given;
  bool from_saved_state = false;
  if (restore_images.empty()) {
    restore_images = pending_saved_state(name, stateless);
    from_saved_state = !restore_images.empty();
  }
  const ContainerDisk *disk = BH_TRY(container_disk(e.rec.config.storage));
  if (auto r = disk->attach(paths); !r)
    return fail("starting " + name + ": its disk: " + r.error().text(), r.error().code);
  const auto &idmap = e.rec.config.idmap;
  if (idmap && !restore_images.empty())
    BH_CHECK(context(searchable_for_restore(options_.root, restore_images), "restoring " + name));
  if (auto r = write_network_files(networks_, paths.upper, e.rec.config.hostname, e.rec.config.nets,
                                   idmap ? idmap->uid : 0, idmap ? idmap->gid : 0);
      !r)
    return fail("starting " + name + ": " + r.error().text(), r.error().code);
  ::unlink(paths.exit_file.c_str());
  ::unlink(paths.monitor_state.c_str());
  // The forwards go in before the container exists: a DNAT to an address nobody holds yet is
  // harmless, and a failure here starts nothing.
  if (auto r = activate_ports_locked(e, true); !r) {
    (void)activate_ports_locked(e, false);
    return fail("starting " + name + ": " + r.error().text(), r.error().code);
  }
  s.want_running = true;
  s.state = "starting";
  s.error.clear();
  if (auto r = save_locked(e); !r) {
    (void)activate_ports_locked(e, false);
    return r;
  }
  // A restore's established connections need its netns closed until CRIU is done (restore_lock.hpp).
  const bool lock_inbound = !restore_images.empty() && !e.rec.config.nets.empty();
  auto started = launch_monitor(options_.monitor_binary, monitor_request(e.rec, *tmpl, restore_images),
                                options_.start_timeout_ms, paths.monitor_log, [&](pid_t init_pid) -> Status {
                                  // Locked before the NICs exist: a peer's retransmission that
                                  // reached the addresses between their setup and the lock was
                                  // answered with a reset (seen under load in the migrate VM).
                                  if (lock_inbound)
                                    BH_CHECK(lock_restore_inbound(init_pid));
                                  return setup_nics(networks_, e.rec.config.nets, init_pid);
                                });
  if (!started) {
    // The monitor undoes its own work when it can report; when it could not (killed at the
    // timeout), the daemon removes what may be left.
    cleanup_leftovers_locked(e);
    teardown_nics_host(networks_, e.rec.config.nets);
    (void)activate_ports_locked(e, false);
    s.want_running = false;
    s.state = "stopped";
    s.error = started.error().message;
    if (from_saved_state)
      s.error +=
          "; `bulkheadctl start --stateless " + name + "` boots it afresh (its saved state is discarded)";
    (void)save_locked(e);
    events_.publish("container-start-failed", name, {{"error", s.error}});
    return fail("starting " + name + ": " + s.error, started.error().code);
  }
  Status unlocked = lock_inbound ? unlock_restore_inbound(started->init_pid) : Status{};
  if (from_saved_state) // resumed: the state is live again, and the next start boots afresh
    if (auto r = remove_tree(restore_images); !r)
      fmt::print(stderr, "bulkheadd: warning: {}: removing its saved state: {}\n", name, r.error().text());
  s.monitor_pid = started->monitor_pid;
  s.monitor_start_time =
      runtime::read_proc_stat(started->monitor_pid).value_or(runtime::ProcStat{}).start_time;
  s.init_pid = started->init_pid;
  s.init_start_time = started->init_start_time;
  s.started_unix_ms = now_unix_ms();
  s.state = "running";
  auto fd = runtime::open_pidfd({s.monitor_pid, s.monitor_start_time});
  if (fd)
    watch_locked(e, std::move(*fd), false);
  (void)save_locked(e);
  e.changed.notify_all();
  events_.publish("container-started", name, {{"pid", s.init_pid}, {"restored", !restore_images.empty()}});
  if (!fd) // exited already: its exit is handled like any other
    std::thread([this, name] {
      if (auto p = find(name))
        handle_exit(p);
    }).detach();
  if (!unlocked) { // restored, but deaf to the network: not a container to leave running
    (void)stop_locked(e, lock, 10);
    return fail("starting " + name + ": " + unlocked.error().text(), unlocked.error().code);
  }
  return {};
}

Status Daemon::stop(const std::string &name, int timeout_s) {
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  return stop_locked(*e, lock, timeout_s);
}

// The template's shutdown signal to init (systemd: SIGRTMIN+3, busybox: SIGUSR2), then after
// `timeout_s` SIGKILL to every process of the container's cgroup.
Status Daemon::stop_locked(Entry &e, std::unique_lock<std::mutex> &lock, int timeout_s) {
  auto &s = e.rec.status;
  const auto &name = e.rec.config.name;
  if (s.state == "starting" && e.restart_at_ms) {
    e.restart_at_ms = 0; // a pending restart is cancelled by stop
    s.want_running = false;
    s.state = "stopped";
    (void)save_locked(e);
    return {};
  }
  if (!e.watch_fd)
    return fail("container \"" + name + "\" is not running", EINVAL);
  uint64_t gen = e.generation;
  s.want_running = false;
  bool was_frozen = s.state == "frozen";
  s.state = "stopping";
  (void)save_locked(e);
  auto rt = runtime();
  if (was_frozen)
    (void)rt.resume(name);
  std::string sig_text = e.rec.config.stop_signal;
  if (sig_text.empty()) {
    auto tmpl = templates_.get(e.rec.config.template_name);
    sig_text = tmpl ? tmpl->stop_signal : "SIGPWR";
  }
  int sig = signal_number(sig_text.empty() ? "SIGPWR" : sig_text).value_or(SIGPWR);
  auto exited = [&] { return e.generation != gen; };
  if (timeout_s > 0) {
    (void)rt.kill(name, sig, false);
    e.changed.wait_for(lock, std::chrono::seconds(timeout_s), exited);
  }
  if (!exited()) {
    (void)rt.kill(name, SIGKILL, true);
    if (!e.changed.wait_for(lock, std::chrono::seconds(30), exited))
      return fail("container \"" + name + "\" did not stop after SIGKILL", ETIMEDOUT);
  }
  return {};
}

Result<json> Daemon::set(const std::string &name, const json &req) {
  BH_CHECK(known_fields(
      req, {"memory", "cpus", "pids", "restart", "onboot", "disk", "disk_inodes", "net_limits"}, "set"));
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  ContainerConfig c = e->rec.config;
  if (req.contains("memory"))
    c.limits.memory_bytes = BH_TRY(memory_field(req["memory"]));
  if (req.contains("cpus"))
    c.limits.cpus = BH_TRY(cpus_field(req["cpus"]));
  if (req.contains("pids"))
    c.limits.pids = BH_TRY(pids_field(req["pids"]));
  if (req.contains("restart")) {
    if (!req["restart"].is_string())
      return fail("\"restart\" must be a string", EINVAL);
    c.restart = BH_TRY(parse_restart_policy(req["restart"].get<std::string>()));
  }
  if (req.contains("onboot")) {
    if (!req["onboot"].is_boolean())
      return fail("\"onboot\" must be true or false", EINVAL);
    c.onboot = req["onboot"].get<bool>();
  }
  if (req.contains("disk_inodes"))
    return fail("the inode limit is fixed at create (it grows with --disk, in proportion)", EINVAL);
  std::optional<uint64_t> disk_bytes;
  if (req.contains("disk"))
    disk_bytes = BH_TRY(disk_bytes_field(req["disk"]));
  if (req.contains("net_limits"))
    BH_CHECK(set_nic_limits(c.nets, req["net_limits"], e->watch_fd && is_active(e->rec.status.state)));
  bool limits_changed = req.contains("memory") || req.contains("cpus") || req.contains("pids");
  if (limits_changed && e->watch_fd && !e->watching_init) {
    auto rt = runtime();
    if (c.limits.memory_bytes) {
      auto stats = rt.stats(name);
      if (stats && stats->memory && stats->memory->usage.usage > *c.limits.memory_bytes)
        return fail(fmt::format("memory limit {} bytes is below the container's current usage of {} bytes",
                                *c.limits.memory_bytes, stats->memory->usage.usage),
                    EINVAL);
    }
    oci::Resources res;
    oci::MemoryResources mem;
    mem.limit = c.limits.memory_bytes ? static_cast<int64_t>(*c.limits.memory_bytes) : -1;
    res.memory = mem;
    oci::CpuResources cpu;
    cpu.period = 100000;
    cpu.quota = c.limits.cpus ? static_cast<int64_t>(*c.limits.cpus * 100000) : -1;
    res.cpu = cpu;
    oci::PidsResources pids;
    pids.limit = c.limits.pids ? *c.limits.pids : -1;
    res.pids = pids;
    if (auto r = rt.update(name, res); !r)
      return fail("applying the limits to " + name + ": " + r.error().text(), EINVAL);
  }
  if (disk_bytes) {
    if (auto r = change_disk_limit(c, records_.paths(name), *disk_bytes); !r)
      return fail(name + ": " + r.error().text(), r.error().code);
    c.disk.bytes = disk_bytes;
  }
  e->rec.config = c;
  BH_CHECK(save_locked(*e));
  events_.publish("container-updated", name);
  return info_locked(*e);
}

Status Daemon::destroy(const std::string &name, bool force) {
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  if (is_active(e->rec.status.state)) {
    if (!force)
      return fail("container \"" + name + "\" is " + e->rec.status.state + "; stop it first or use --force",
                  EBUSY);
    BH_CHECK(stop_locked(*e, lock, 0));
  }
  e->restart_at_ms = 0;
  cleanup_leftovers_locked(*e);
  auto paths = records_.paths(name);
  if (storage::overlay_mounted(paths.rootfs))
    return fail("destroying " + name + ": its root filesystem is still mounted at " + paths.rootfs, EBUSY);
  if (auto disk = container_disk(e->rec.config.storage); disk)
    if (auto r = (*disk)->detach(paths); !r)
      return fail("destroying " + name + ": " + r.error().text(), r.error().code);
  // The removal walks the directory without crossing into mounts' contents only by luck of what
  // is there: anything still mounted below it (the template, idmapped, of an unprivileged
  // container) would be emptied through the mount. Refuse instead.
  for (const auto &m : storage::read_mountinfo())
    if (m.mount_point.rfind(paths.dir + "/", 0) == 0)
      return fail("destroying " + name + ": " + m.mount_point + " is still mounted (" + m.fstype + ")",
                  EBUSY);
  BH_CHECK(records_.remove(name));
  (void)snapshots_.remove_all(name);
  release_nics(networks_, name, e->rec.config.nets);
  // Stopped already, so its rules are out; the rebuild also covers a removal that failed then.
  ports_.release_container(name);
  for (const auto &f : e->rec.config.ports)
    if (auto r = refresh_nat(f.network); !r)
      fmt::print(stderr, "bulkheadd: warning: destroying {}: {}\n", name, r.error().text());
  {
    std::lock_guard tl(table_mu_);
    entries_.erase(name);
  }
  lock.unlock();
  release_placement(name); // only when it names this host: a fenced copy leaves its owner's alone
  events_.publish("container-destroyed", name);
  return {};
}

Status Daemon::set_frozen_locked(Entry &e, bool freeze, const nlohmann::json &detail) {
  const std::string &name = e.rec.config.name;
  auto rt = runtime();
  BH_CHECK(freeze ? rt.pause(name) : rt.resume(name));
  e.rec.status.state = freeze ? "frozen" : "running";
  (void)save_locked(e);
  events_.publish(freeze ? "container-frozen" : "container-unfrozen", name, detail);
  return {};
}

Result<std::shared_ptr<Operation>> Daemon::change_state(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"action", "timeout", "signal", "stateful", "stateless"}, "state"));
  std::string action = BH_TRY(string_field(req, "action"));
  int timeout = 30;
  if (req.contains("timeout")) {
    if (!req["timeout"].is_number_integer() || req["timeout"].get<int>() < 0)
      return fail("\"timeout\" must be a whole number of seconds", EINVAL);
    timeout = req["timeout"].get<int>();
  }
  bool flags[2] = {false, false};
  const char *flag_names[2] = {"stateful", "stateless"};
  for (int i = 0; i < 2; ++i)
    if (req.contains(flag_names[i])) {
      if (!req[flag_names[i]].is_boolean())
        return fail(fmt::format("\"{}\" must be true or false", flag_names[i]), EINVAL);
      flags[i] = req[flag_names[i]].get<bool>();
    }
  bool stateful = flags[0], stateless = flags[1];
  if (stateful && action != "stop")
    return fail("\"stateful\" goes with the action stop", EINVAL);
  if (stateless && action != "start")
    return fail("\"stateless\" goes with the action start", EINVAL);
  auto e = BH_TRY(get(name));
  std::string resource = "/1.0/containers/" + name;
  if (action == "start" || action == "restart")
    BH_CHECK(refuse_while_evacuating(action + "ing " + name));
  if (action == "start" || action == "restart" || action == "unfreeze") {
    // Refused here (409) rather than as a failed operation: a fenced copy may not run at all.
    std::lock_guard lock(e->mu);
    if (!e->rec.status.fenced_by.empty())
      return fail(fmt::format("container \"{}\" is fenced: the cluster placed it on host {} (it failed over "
                              "there), so this copy may not run; destroy it here",
                              name, e->rec.status.fenced_by),
                  EBUSY);
  }
  if (action == "start")
    return operations_.start("Starting container " + name, resource,
                             [this, name, stateless](Operation &) { return start(name, stateless); });
  if (action == "stop" && stateful)
    return operations_.start("Stopping container " + name + " with its state saved", resource,
                             [this, name](Operation &) -> Status {
                               auto e = BH_TRY(get(name));
                               std::unique_lock lock(e->mu);
                               return stop_stateful_locked(*e, lock);
                             });
  if (action == "stop")
    return operations_.start("Stopping container " + name, resource,
                             [this, name, timeout](Operation &) { return stop(name, timeout); });
  if (action == "restart")
    return operations_.start("Restarting container " + name, resource,
                             [this, name, timeout](Operation &) -> Status {
                               auto e = BH_TRY(get(name));
                               std::unique_lock lock(e->mu);
                               if (e->watch_fd || e->restart_at_ms)
                                 BH_CHECK(stop_locked(*e, lock, timeout));
                               return start_locked(*e, lock);
                             });
  if (action == "freeze" || action == "unfreeze") {
    bool freeze = action == "freeze";
    return operations_.start(std::string(freeze ? "Freezing" : "Unfreezing") + " container " + name, resource,
                             [this, name, freeze](Operation &) -> Status {
                               auto e = BH_TRY(get(name));
                               std::unique_lock lock(e->mu);
                               auto &st = e->rec.status.state;
                               if (st != (freeze ? "running" : "frozen"))
                                 return fail("container \"" + name + "\" is " + st, EINVAL);
                               return set_frozen_locked(*e, freeze);
                             });
  }
  if (action == "kill") {
    std::string sig_text = req.value("signal", std::string("KILL"));
    int sig = BH_TRY(signal_number(sig_text));
    return operations_.start("Signalling container " + name, resource,
                             [this, name, sig](Operation &) -> Status {
                               auto e = BH_TRY(get(name));
                               std::unique_lock lock(e->mu);
                               if (!e->watch_fd)
                                 return fail("container \"" + name + "\" is not running", EINVAL);
                               return runtime().kill(name, sig, false);
                             });
  }
  return fail("unknown action \"" + action + "\" (expected start, stop, restart, freeze, unfreeze or kill)",
              EINVAL);
}

std::vector<IdMap> Daemon::used_id_ranges_locked() const {
  std::vector<IdMap> used;
  for (const auto &[n, other] : entries_)
    if (other->idmap)
      used.push_back(*other->idmap);
  return used;
}

Status Daemon::id_range_free(const IdMap &want) {
  auto pool = BH_TRY(load_id_pool(options_.id_range, options_.subuid_file, options_.subgid_file));
  std::vector<IdMap> used;
  {
    std::lock_guard lock(table_mu_);
    used = used_id_ranges_locked();
  }
  BH_TRY(claim_id_range(pool, used, want));
  return {};
}

Result<std::string> Daemon::log_path(const std::string &name) {
  BH_TRY(get(name));
  return records_.paths(name).log;
}

Result<std::string> Daemon::console_socket(const std::string &name) {
  auto e = BH_TRY(get(name));
  std::lock_guard lock(e->mu);
  if (!e->watch_fd || e->watching_init)
    return fail("container \"" + name + "\" is not running (or its monitor is gone)", EINVAL);
  return records_.paths(name).socket;
}

} // namespace bulkhead::daemon
