// Daemon start-up, re-adoption of running containers and supervision (exits, restart policy).
#include "daemon/daemon.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <deque>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "cgroups/systemd_scope.hpp"
#include "daemon/container_disk.hpp"
#include "daemon/lxcfs.hpp"
#include "daemon/nic_host.hpp"
#include "runtime/process_id.hpp"
#include "storage/overlay.hpp"

namespace bulkhead::daemon {

namespace {

// A run that lasted this long resets the failure count, so a container that crashes once a day
// restarts at once instead of inheriting yesterday's backoff.
constexpr int64_t kStableRunMs = 10'000;
constexpr int64_t kBackoffFirstMs = 100;
constexpr int64_t kBackoffMaxMs = 30'000;
// Consecutive failures from which `info` reports a crash loop.
constexpr int kCrashLoopFailures = 3;

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

} // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)), records_(options_.root), templates_(options_.root),
      snapshots_(options_.root), networks_(options_.root) {
  // A NAT table is always written with the forwards of the running containers on its network.
  networks_.set_forwards([this](const std::string &network) { return ports_.rules(network); });
  if (options_.monitor_binary.empty()) {
    // A build tree keeps both binaries in one directory; an install puts bulkheadd in sbin/ and
    // the monitor in libexec/bulkhead/ (it is not a command for people).
    std::string dir = self_dir();
    options_.monitor_binary = dir + "/bulkhead-monitor";
    std::string installed = dir + "/../libexec/bulkhead/bulkhead-monitor";
    if (::access(options_.monitor_binary.c_str(), X_OK) < 0 && ::access(installed.c_str(), X_OK) == 0)
      options_.monitor_binary = installed;
  }
}

Daemon::~Daemon() { shutdown(); }

Runtime Daemon::runtime() const {
  RuntimeOptions ro;
  ro.root = options_.root + "/oci";
  return Runtime(ro);
}

// Fixed for the daemon's life. A container keeps the cgroup its runtime record names, so one
// started under the other driver (before a restart with another --cgroup-driver) is still
// stopped, updated and deleted the way it was made.
Status Daemon::init_cgroup_placement() {
  bool booted = ::access("/run/systemd/system", F_OK) == 0;
  cgroups_ = BH_TRY(resolve_cgroup_placement(options_.cgroup_driver, options_.cgroup_parent, booted));
  if (!cgroups_.systemd)
    return {};
  auto bus = cgroups::SystemdBus::connect();
  if (bus)
    return {};
  if (options_.cgroup_driver == "systemd")
    return tl::unexpected(with_context(bus.error(), "--cgroup-driver systemd"));
  cgroups_ = BH_TRY(resolve_cgroup_placement("cgroupfs", "", booted));
  fmt::print(stderr,
             "bulkheadd: warning: systemd is PID 1 but its manager does not answer ({}); containers get "
             "cgroupfs cgroups under {}\n",
             bus.error().text(), cgroups_.parent);
  return {};
}

Status Daemon::init() {
  started_ms_ = now_unix_ms();
  BH_CHECK(records_.init_dirs());
  std::string lock_path = options_.root + "/bulkheadd.lock";
  lock_fd_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_)
    return failf_errno("opening {}", lock_path);
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) < 0)
    return failf_errno("another bulkheadd uses {} (lock {})", options_.root, lock_path);
  if (::access(options_.monitor_binary.c_str(), X_OK) < 0)
    return failf_errno("the monitor binary {}", options_.monitor_binary);
  BH_CHECK(init_cgroup_placement());
  templates_.sweep_staging();
  snapshots_.sweep_staging();
  // The records first: the NAT tables that networks_.init() rebuilds carry the port forwards of
  // the containers the records say run, so a restarted daemon replaces each table with the same
  // rules (no moment without them). Containers found dead meanwhile drop theirs in adopt().
  std::vector<std::string> bad;
  for (auto &rec : records_.load_all(&bad)) {
    auto e = std::make_shared<Entry>();
    e->rec = std::move(rec);
    e->idmap = e->rec.config.idmap; // its id range stays taken (id_ranges.hpp)
    ports_.load(e->rec.config);
    const auto &state = e->rec.status.state;
    if (state != "stopped" && state != "error")
      ports_.set_active(e->rec.config.name, true);
    entries_[e->rec.config.name] = e;
  }
  BH_CHECK(networks_.init());
  BH_CHECK(init_peers());

  if (options_.lxcfs) {
    if (auto r = ensure_lxcfs(options_.lxcfs_dir); r)
      lxcfs_ready_ = true;
    else
      fmt::print(stderr, "bulkheadd: warning: no container-aware /proc: {}\n", r.error().text());
  }

  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_fd_ || !wake_fd_)
    return fail_errno("creating the supervisor's epoll");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);

  for (const auto &b : bad)
    fmt::print(stderr, "bulkheadd: warning: skipping an unreadable record: {}\n", b);
  // With --cluster: joined, and the containers placed on other hosts fenced, before the supervisor
  // can restart anything and before re-adoption (an unreachable etcd stops the start here, and the
  // containers run on under their monitors, untouched).
  if (!options_.cluster.empty())
    BH_CHECK(join_cluster());
  if (bad.empty())
    reconcile_addresses();
  supervisor_ = std::thread([this] { supervise(); });
  for (auto &[name, e] : entries_)
    adopt(e);
  finish_interrupted_migrations();
  sweep_replicas();
  if (bad.empty())
    remove_stray_nics();
  start_replicator(); // the protected containers' rounds resume (their records keep the intent)
  if (cluster_)
    start_cluster(); // before onboot (main starts it after init)
  return {};
}

std::map<std::string, std::string> Daemon::cluster_states() {
  std::vector<std::pair<std::string, EntryPtr>> table;
  {
    std::lock_guard lock(table_mu_);
    table.assign(entries_.begin(), entries_.end());
  }
  std::lock_guard states_lock(cluster_states_mu_);
  std::map<std::string, std::string> states;
  for (auto &[name, e] : table) {
    // A container's mu is held through a whole start or stop: use its last known state meanwhile,
    // so the lease's keep-alive (same thread) is never late because of a slow container.
    std::unique_lock lock(e->mu, std::try_to_lock);
    if (lock.owns_lock())
      states[name] = e->rec.status.state;
    else if (auto it = cluster_last_states_.find(name); it != cluster_last_states_.end())
      states[name] = it->second;
    else
      states[name] = "busy";
  }
  cluster_last_states_ = states;
  return states;
}

Result<nlohmann::json> Daemon::cluster_info() {
  if (!cluster_)
    return nlohmann::json{{"enabled", false}};
  auto view = BH_TRY(cluster_view(cluster_->client(), options_.host_name));
  // The cluster's trust (daemon/cluster_trust.hpp): which hosts this one trusts through the key.
  std::set<std::string> trusted;
  for (const auto &m : cluster_trust_->members())
    trusted.insert(m.name);
  for (auto &h : view["hosts"])
    h["trusted"] = trusted.count(h.value("name", "")) > 0;
  std::string key = trust_->cluster_key();
  view["trust"] = {{"key_id", key.empty() ? nlohmann::json(nullptr) : nlohmann::json(cluster_key_id(key))},
                   {"members", trusted}};
  return view;
}

// Finds what became of a container while no daemon watched it: its monitor still runs (re-adopt),
// it exited (exit.json: apply the restart policy), or the monitor died and init lives on (watch
// init itself). A container found half-made is cleaned up.
void Daemon::adopt(const EntryPtr &e) {
  std::unique_lock lock(e->mu);
  auto &s = e->rec.status;
  auto paths = records_.paths(e->rec.config.name);
  // The disk image's mount outlives the daemon; after a reboot it is mounted again here.
  if (auto disk = container_disk(e->rec.config.storage); disk) {
    if (auto r = (*disk)->attach(paths); !r)
      fmt::print(stderr, "bulkheadd: warning: {}: its disk: {}\n", e->rec.config.name, r.error().text());
  }
  if (s.state == "stopped" || s.state == "error") {
    if (s.monitor_pid == 0)
      cleanup_leftovers_locked(*e);
    return;
  }
  // A start that was interrupted before the record got the monitor's pid: the monitor's own
  // state file names it.
  if (s.monitor_pid == 0) {
    if (auto text = read_file(paths.monitor_state); text) {
      try {
        auto j = nlohmann::json::parse(*text);
        s.monitor_pid = j.value("monitor_pid", 0);
        s.monitor_start_time = j.value("monitor_start_time", uint64_t{0});
        s.init_pid = j.value("init_pid", 0);
        s.init_start_time = j.value("init_start_time", uint64_t{0});
      } catch (const nlohmann::json::exception &) {
      }
    }
  }
  runtime::ProcessId monitor{s.monitor_pid, s.monitor_start_time};
  if (s.monitor_pid && runtime::is_alive(monitor)) {
    if (auto fd = runtime::open_pidfd(monitor); fd) {
      if (s.state == "starting")
        s.state = "running";
      if (s.state == "running" || s.state == "frozen") {
        auto st = runtime().state(e->rec.config.name);
        if (st && st->status == "paused")
          s.state = "frozen";
        else if (st && st->status == "running")
          s.state = "running";
      }
      watch_locked(*e, std::move(*fd), false);
      readopt_nics_locked(*e);
      (void)save_locked(*e);
      return;
    }
  }
  runtime::ProcessId init{s.init_pid, s.init_start_time};
  if (s.init_pid && runtime::is_alive(init) && ::access(paths.exit_file.c_str(), F_OK) != 0) {
    if (auto fd = runtime::open_pidfd(init); fd) {
      s.error = "the container's monitor died: console and logs are unavailable until it restarts";
      watch_locked(*e, std::move(*fd), true);
      readopt_nics_locked(*e);
      (void)save_locked(*e);
      return;
    }
  }
  lock.unlock();
  handle_exit(e);
}

void Daemon::watch_locked(Entry &e, UniqueFd fd, bool init) {
  e.watching_init = init;
  e.watch_fd = std::move(fd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  // The entry outlives its registration: handle_exit removes the fd before the entry can go.
  ev.data.ptr = &e;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, e.watch_fd.get(), &ev);
}

void Daemon::wake_supervisor() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

// One thread waits on every monitor's pidfd and on the next scheduled restart. The work an event
// causes runs on a thread of its own, so a slow start never delays another container's exit.
void Daemon::supervise() {
  epoll_event events[64];
  while (!quit_) {
    int64_t next = 0;
    std::vector<EntryPtr> due;
    {
      // Lock order: an entry's mu may be held while taking table_mu_ (create, destroy), so the
      // table is copied first and never held while an entry is locked.
      std::vector<EntryPtr> all;
      {
        std::lock_guard lock(table_mu_);
        for (auto &[name, e] : entries_)
          all.push_back(e);
      }
      int64_t now = now_unix_ms();
      for (auto &e : all) {
        std::lock_guard el(e->mu);
        if (!e->restart_at_ms)
          continue;
        if (e->restart_at_ms <= now)
          due.push_back(e);
        else if (!next || e->restart_at_ms < next)
          next = e->restart_at_ms;
      }
    }
    for (auto &e : due) {
      std::thread([this, e] {
        std::unique_lock lock(e->mu);
        if (!e->restart_at_ms || e->restart_at_ms > now_unix_ms())
          return;
        e->restart_at_ms = 0;
        if (!e->rec.status.want_running)
          return;
        e->rec.status.restarts++;
        if (auto r = start_locked(*e, lock); r)
          events_.publish("container-restarted", e->rec.config.name, {{"restarts", e->rec.status.restarts}});
      }).detach();
    }
    int timeout = next ? static_cast<int>(std::clamp<int64_t>(next - now_unix_ms(), 1, 60'000)) : 60'000;
    int n = ::epoll_wait(epoll_fd_.get(), events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      if (!events[i].data.ptr) {
        uint64_t v;
        (void)!::read(wake_fd_.get(), &v, sizeof v);
        continue;
      }
      auto *raw = static_cast<Entry *>(events[i].data.ptr);
      EntryPtr e;
      {
        std::lock_guard lock(table_mu_);
        for (auto &[name, p] : entries_)
          if (p.get() == raw)
            e = p;
      }
      if (!e)
        continue;
      {
        std::lock_guard el(e->mu);
        if (!e->watch_fd)
          continue;
        // Level-triggered: stop watching before the handler thread runs, or the fd fires again.
        ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, e->watch_fd.get(), nullptr);
      }
      std::thread([this, e] { handle_exit(e); }).detach();
    }
  }
}

// Removes what a container left behind when nobody could clean up for it (its monitor was killed,
// or the host rebooted): the runtime's state and cgroup, and the overlay mount.
void Daemon::cleanup_leftovers_locked(Entry &e) {
  const auto &name = e.rec.config.name;
  auto paths = records_.paths(name);
  DeleteOptions force;
  force.force = true;
  (void)runtime().remove(name, force);
  (void)storage::unmount_overlay(paths.rootfs);
  // An unprivileged container's idmapped template, left by a monitor killed between mounting it
  // and the overlay (monitor_setup.cpp): a removal of the directory must never reach into it.
  (void)storage::unmount_overlay(paths.bundle + "/lower");
  ::unlink(paths.socket.c_str());
}

// A monitor exited (or, without a monitor, init did): record how, clean up, and apply the
// restart policy.
void Daemon::handle_exit(const EntryPtr &ep) {
  std::unique_lock lock(ep->mu);
  Entry &e = *ep;
  auto &s = e.rec.status;
  const auto &name = e.rec.config.name;
  auto paths = records_.paths(name);
  if (e.watch_fd) {
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, e.watch_fd.get(), nullptr);
    // Reap our own child; ECHILD for a monitor adopted from an earlier daemon is fine.
    siginfo_t info{};
    if (!e.watching_init)
      ::waitid(static_cast<idtype_t>(3 /* P_PIDFD */), static_cast<id_t>(e.watch_fd.get()), &info,
               WEXITED | WNOHANG);
    e.watch_fd.reset();
  }
  if (s.monitor_pid)
    ::waitpid(s.monitor_pid, nullptr, WNOHANG); // our child whose pidfd could not be opened
  LastExit exit;
  exit.at_unix = now_unix_ms() / 1000;
  bool known = false;
  if (auto text = read_file(paths.exit_file); text) {
    try {
      auto j = nlohmann::json::parse(*text);
      exit.code = j.value("code", 0);
      exit.signal = j.value("signal", 0);
      exit.at_unix = j.value("at", exit.at_unix);
      known = true;
    } catch (const nlohmann::json::exception &) {
    }
  }
  if (!known) {
    // The monitor died before it could clean up: do it here.
    cleanup_leftovers_locked(e);
    exit.code = -1;
  }
  ::unlink(paths.exit_file.c_str());
  ::unlink(paths.monitor_state.c_str());
  // What outlives the container's netns: IFBs, proxy NDP entries (and a lingering host end).
  teardown_nics_host(networks_, e.rec.config.nets);
  if (auto r = activate_ports_locked(e, false); !r)
    fmt::print(stderr, "bulkheadd: warning: {}: removing its port forwards: {}\n", name, r.error().text());
  int64_t ran_ms = s.started_unix_ms ? now_unix_ms() - s.started_unix_ms : 0;
  s.last_exit = exit;
  s.monitor_pid = 0;
  s.monitor_start_time = 0;
  s.init_pid = 0;
  s.init_start_time = 0;
  s.started_unix_ms = 0;
  e.watching_init = false;
  e.standing_dump.reset(); // its worker and CRIU go (they never touched the container)
  e.generation++;

  // SIGINT: the container's init powered off or halted (reboot(2) in a pid namespace);
  // SIGHUP: it rebooted, which means "start me again" whatever the policy says.
  bool reboot = exit.signal == SIGHUP;
  bool clean = (exit.signal == 0 && exit.code == 0) || exit.signal == SIGINT;
  nlohmann::json detail = {{"code", exit.code}, {"signal", exit.signal}};
  if (!s.want_running || stopping_ || !s.fenced_by.empty()) {
    s.state = "stopped";
    s.error.clear();
    (void)save_locked(e);
    e.changed.notify_all();
    events_.publish("container-stopped", name, detail);
    return;
  }
  if (ran_ms >= kStableRunMs)
    s.consecutive_failures = 0;
  if (!clean && !reboot)
    s.consecutive_failures++;
  const auto &policy = e.rec.config.restart;
  bool restart = reboot || policy.kind == RestartPolicy::Kind::Always ||
                 (policy.kind == RestartPolicy::Kind::OnFailure && !clean &&
                  (policy.max_retries == 0 || s.consecutive_failures <= policy.max_retries));
  events_.publish("container-died", name, detail);
  if (!restart) {
    s.want_running = false;
    bool gave_up = policy.kind == RestartPolicy::Kind::OnFailure && !clean;
    s.state = gave_up ? "error" : "stopped";
    s.error = gave_up ? fmt::format("init {} and the restart policy {} gave up after {} consecutive failures",
                                    exit.signal ? fmt::format("was killed by signal {}", exit.signal)
                                                : fmt::format("exited with code {}", exit.code),
                                    restart_policy_text(policy), s.consecutive_failures - 1)
                      : "";
    (void)save_locked(e);
    e.changed.notify_all();
    return;
  }
  int64_t delay = 0;
  if (s.consecutive_failures > 0)
    delay = std::min(kBackoffMaxMs, kBackoffFirstMs << std::min(s.consecutive_failures - 1, 20));
  s.state = "starting";
  e.restart_at_ms = now_unix_ms() + delay;
  (void)save_locked(e);
  e.changed.notify_all();
  wake_supervisor();
}

Status Daemon::save_locked(Entry &e) {
  auto r = records_.save(e.rec);
  if (!r)
    fmt::print(stderr, "bulkheadd: error: saving the record of {}: {}\n", e.rec.config.name,
               r.error().text());
  return r;
}

void Daemon::start_onboot() {
  std::deque<EntryPtr> todo;
  std::vector<EntryPtr> all;
  {
    std::lock_guard lock(table_mu_);
    for (auto &[name, e] : entries_)
      all.push_back(e);
  }
  for (auto &e : all) {
    std::lock_guard el(e->mu); // never under table_mu_ (see supervise)
    if (e->rec.config.onboot && e->rec.status.state == "stopped")
      todo.push_back(e);
  }
  std::mutex mu;
  std::vector<std::thread> workers;
  int n = std::max(1, std::min<int>(options_.onboot_parallel, static_cast<int>(todo.size())));
  for (int i = 0; i < n; ++i)
    workers.emplace_back([&] {
      for (;;) {
        EntryPtr e;
        {
          std::lock_guard lock(mu);
          if (todo.empty())
            return;
          e = todo.front();
          todo.pop_front();
        }
        if (auto r = start(e->rec.config.name); !r)
          fmt::print(stderr, "bulkheadd: onboot start of {} failed: {}\n", e->rec.config.name,
                     r.error().text());
      }
    });
  for (auto &w : workers)
    w.join();
}

void Daemon::shutdown() {
  if (stopping_.exchange(true))
    return;
  stop_replicator(); // a round in flight ends first (its standby keeps the previous set otherwise)
  if (peers_)
    peers_->stop(); // no other host's request starts anything from now on
  stop_replica_flattenings();
  if (self_fence_)
    self_fence_->stop(); // what it froze stays frozen: the next start decides (docs/cluster.md)
  if (control_)
    control_->stop(); // no placement is published, fenced or activated from now on
  if (cluster_)
    cluster_->stop(); // marks this host stopped on purpose and revokes the lease
  if (options_.stop_containers_on_exit) {
    std::vector<std::thread> stoppers;
    std::vector<std::string> names;
    {
      std::lock_guard lock(table_mu_);
      for (auto &[name, e] : entries_)
        names.push_back(name);
    }
    for (auto &name : names)
      stoppers.emplace_back([this, name] {
        auto e = find(name);
        if (!e)
          return;
        std::unique_lock lock(e->mu);
        if (e->rec.status.state == "running" || e->rec.status.state == "frozen")
          (void)stop_locked(*e, lock, 30);
      });
    for (auto &t : stoppers)
      t.join();
  }
  quit_ = true;
  wake_supervisor();
  if (supervisor_.joinable())
    supervisor_.join();
}

} // namespace bulkhead::daemon
