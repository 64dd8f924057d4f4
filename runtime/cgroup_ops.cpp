// The Runtime operations that work through the container's cgroup v2: pause/resume (freezer),
// update (resources), stats, processes and events (stats + OOM notifications).
#include <chrono>
#include <poll.h>

#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"
#include "cgroups/cgroup.hpp"
#include "cgroups/device_filter.hpp"
#include "cgroups/freezer.hpp"
#include "cgroups/resources.hpp"
#include "cgroups/stats.hpp"
#include "cgroups/systemd_scope.hpp"
#include "oci/parse.hpp"
#include "runtime/container.hpp"
#include "runtime/rootless.hpp"

namespace bulkhead::runtime {

namespace {

struct Loaded {
  ContainerDir dir;
  ContainerRecord rec;
  std::string status;
  cgroups::Cgroup cgroup;
};

Result<Loaded> load(const RuntimeOptions &ro, const std::string &id, bool lock) {
  StateStore store(ro.root);
  Loaded l;
  l.dir = BH_TRY(lock ? store.open(id) : store.open_unlocked(id));
  l.rec = BH_TRY(l.dir.load());
  l.status = compute_status(l.dir, l.rec);
  if (l.rec.cgroup_path.empty())
    return failf("container {:?} has no cgroup (the host had no cgroup2 filesystem when it was created)", id);
  l.cgroup = cgroups::Cgroup(l.rec.cgroup_mount, l.rec.cgroup_path);
  return l;
}

Status require_status(const Loaded &l, const std::string &id, std::initializer_list<const char *> allowed,
                      const char *action) {
  for (const char *s : allowed)
    if (l.status == s)
      return {};
  return failf("container {:?} cannot be {}: it is {}", id, action, l.status);
}

// The first word of a one-line interface file ("max 100000" -> "max").
Result<std::string> first_word(const std::string &path) {
  std::string v = BH_TRY(read_file(path));
  return v.substr(0, v.find_first_of(" \n"));
}

// runc's update semantics for values given alone: memory.swap (memory+swap) is relative to the
// limit in place, and a period alone keeps the quota in place. Without the controller the files
// are absent and nothing is filled in: applying then reports the missing controller.
void fill_from_current(const cgroups::Cgroup &cg, oci::Resources &r) {
  const std::string dir = cg.full_path();
  auto current = [](const std::string &path) -> std::optional<int64_t> {
    auto word = first_word(path);
    if (!word || word->empty())
      return std::nullopt;
    if (*word == "max")
      return -1;
    try {
      return std::stoll(*word);
    } catch (const std::exception &) {
      return std::nullopt;
    }
  };
  if (r.memory && r.memory->swap.value_or(0) != 0 && r.memory->limit.value_or(0) == 0)
    if (auto limit = current(dir + "/memory.max"))
      r.memory->limit = *limit;
  if (r.cpu && r.cpu->period.value_or(0) != 0 && r.cpu->quota.value_or(0) == 0)
    if (auto quota = current(dir + "/cpu.max"))
      r.cpu->quota = *quota;
}

} // namespace

} // namespace bulkhead::runtime

namespace bulkhead {

using namespace runtime;

Status Runtime::pause(const std::string &id) {
  auto l = BH_TRY(load(options_, id, true));
  BH_CHECK(require_status(l, id, {"running", "created"}, "paused"));
  return cgroups::freeze(l.cgroup);
}

Status Runtime::resume(const std::string &id) {
  auto l = BH_TRY(load(options_, id, true));
  BH_CHECK(require_status(l, id, {"paused"}, "resumed"));
  return cgroups::thaw(l.cgroup);
}

Status Runtime::update(const std::string &id, const oci::Resources &resources) {
  auto l = BH_TRY(load(options_, id, true));
  BH_CHECK(require_status(l, id, {"created", "running", "paused"}, "updated"));
  oci::Resources r = resources;
  fill_from_current(l.cgroup, r);
  if (auto manager = systemd_manager_of(l.rec.cgroup_driver)) {
    // Properties first, so systemd holds the same values the files get below and keeps them when
    // it re-applies the unit's settings.
    auto props = BH_TRY(cgroups::systemd_properties(r));
    if (!props.empty()) {
      auto bus = BH_TRY(cgroups::SystemdBus::connect(*manager));
      BH_CHECK(bus.set_properties(l.rec.systemd_unit, props));
    }
  }
  BH_CHECK(cgroups::apply_resources(l.cgroup, r, cgroups::ApplyMode::Update));
  if (!r.devices.empty()) {
    for (const auto &w : cgroups::device_rule_warnings(r.devices))
      log_warning(options_, w);
    auto fd = BH_TRY(l.cgroup.open_dir());
    BH_CHECK(cgroups::attach_device_filter(fd.get(), l.cgroup.full_path(),
                                           cgroups::effective_device_rules(r.devices)));
  }
  return {};
}

Result<ContainerStats> Runtime::stats(const std::string &id) {
  auto l = BH_TRY(load(options_, id, false));
  if (l.status == "stopped")
    return failf("container {:?} is not running", id);
  return cgroups::read_stats(l.cgroup);
}

Result<std::vector<int>> Runtime::processes(const std::string &id) {
  auto l = BH_TRY(load(options_, id, false));
  // The sub-cgroups a container made (systemd inside) hold its processes too, as runc's ps shows.
  auto pids = l.cgroup.subtree_processes();
  if (!pids && pids.error().code == ENOENT)
    return std::vector<int>{}; // stopped and removed
  return pids;
}

Status Runtime::events(const std::string &id, const EventsOptions &options,
                       const std::function<bool(const ContainerEvent &)> &on_event) {
  auto l = BH_TRY(load(options_, id, false));
  if (l.status == "stopped")
    return failf("container {:?} is not running", id);
  auto emit_stats = [&]() -> Result<bool> {
    auto s = BH_TRY(cgroups::read_stats(l.cgroup));
    return on_event(ContainerEvent{"stats", id, std::move(s)});
  };
  if (options.once)
    return emit_stats().map([](bool) {});

  // Without the memory controller there is nothing to watch; stats still flow.
  auto watcher = cgroups::OomWatcher::open(l.cgroup);
  using clock = std::chrono::steady_clock;
  auto interval = std::chrono::milliseconds(std::max(options.interval_ms, 1));
  auto next_stats = clock::now() + interval;
  for (;;) {
    auto rec = l.dir.load();
    if (!rec || compute_status(l.dir, *rec) == "stopped")
      return {};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_stats - clock::now());
    // Woken at least every 200 ms to notice that the container stopped.
    int timeout = static_cast<int>(std::clamp<long>(wait.count(), 0, 200));
    struct pollfd p {
      watcher ? watcher->fd() : -1, POLLIN, 0
    };
    if (::poll(&p, 1, timeout) < 0 && errno != EINTR)
      return failf_errno("waiting for events of {:?}", id);
    if (watcher && (p.revents & POLLIN)) {
      auto kills = watcher->new_kills();
      if (!kills)
        return {}; // the cgroup is gone: the container stopped
      for (uint64_t i = 0; i < *kills; ++i)
        if (!on_event(ContainerEvent{"oom", id, std::nullopt}))
          return {};
    }
    if (clock::now() >= next_stats) {
      auto more = emit_stats();
      if (!more || !*more)
        return {}; // unreadable: the cgroup went away with the container
      next_stats += interval;
    }
  }
}

} // namespace bulkhead
