// Checkpoint and restore of running system containers (docs/checkpoint.md, "bulkheadd"):
// `checkpoint NAME [--stop] [SNAP]` keeps a snapshot with the container's memory (CRIU images in
// SNAP/memory next to the copy of its upper layer), `restore NAME [SNAP]` brings that instant back
// running; `stop --stateful` keeps the memory in <container dir>/saved-state and the next `start`
// resumes from it (also at boot, for --onboot containers).
//
// The daemon never runs CRIU: libcriu forks, so the dump runs in a worker of the container's
// monitor (the tree's parent) and the restore in a new monitor, which becomes the tree's parent.
//
// | step | checkpoint                                   | failure leaves                      |
// |------|----------------------------------------------|-------------------------------------|
// | 0    | monitor: a worker starts CRIU and waits      | -                                   |
// | 1    | freeze the cgroup                            | -                                   |
// | 2    | copy the upper layer into a staging snapshot | thawed, running; staging removed    |
// | 3    | monitor: the worker's CRIU dumps the frozen  | thawed, running; staging removed    |
// |      | tree                                         |                                     |
// |      | (stop: CRIU kills it; the monitor exits)     |                                     |
// | 4    | thaw (without stop); commit the snapshot     | the dump is kept only when complete |
// Disk and memory are one instant: nothing runs between the copy and the dump. Step 0 keeps
// CRIU's start (0.1-0.15 s in the test VM, with the staging) out of the freeze.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/monitor_client.hpp"
#include "daemon/request_fields.hpp"
#include "storage/tree.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

std::string default_checkpoint_name() {
  auto t = std::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "ckpt-%Y%m%d-%H%M%S", &tm);
  return buf;
}

bool has_images(const std::string &dir) { return ::access((dir + "/inventory.img").c_str(), F_OK) == 0; }

} // namespace

std::string Daemon::saved_state_path(const std::string &name) const {
  return records_.paths(name).dir + "/saved-state";
}

Result<MonitorDump> Daemon::prepare_dump(Entry &e, const std::string &images, bool stop,
                                         const std::string &parent) {
  const auto &name = e.rec.config.name;
  e.standing_dump.reset(); // the monitor's one checkpoint slot
  return context(MonitorDump::prepare(records_.paths(name).socket, images, stop, parent),
                 "checkpoint of " + name + " failed before the freeze; it runs on: starting CRIU");
}

// Steps 3 (and the stop's wait) of the table above, for a frozen, running container. With stop,
// returns once the monitor has exited (the exit is recorded as a stop, not a crash).
Status Daemon::dump_locked(Entry &e, std::unique_lock<std::mutex> &lock, MonitorDump &prepared, bool stop,
                           const std::string &images, const std::string &parent) {
  auto &s = e.rec.status;
  const auto &name = e.rec.config.name;
  uint64_t gen = e.generation;
  if (stop) {
    s.want_running = false;
    s.state = "stopping";
    (void)save_locked(e);
  }
  ++e.dumps; // even a failed dump may have reset the soft-dirty bits
  auto dumped = prepared.dump(images, parent);
  if (!dumped) {
    if (stop && e.generation == gen) {
      s.want_running = true;
      s.state = "running";
      (void)save_locked(e);
    }
    return fail("checkpoint of " + name + " failed; it runs on: " + dumped.error().text(),
                dumped.error().code);
  }
  if (stop && !e.changed.wait_for(lock, std::chrono::seconds(60), [&] { return e.generation != gen; }))
    return fail("container \"" + name + "\" was dumped, but its monitor did not exit within 60 s", ETIMEDOUT);
  return {};
}

Result<std::shared_ptr<Operation>> Daemon::checkpoint(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"snapshot", "stop"}, "checkpoint"));
  std::string snap = BH_TRY(string_field(req, "snapshot", false));
  if (snap.empty())
    snap = default_checkpoint_name();
  BH_CHECK(storage::validate_name("snapshot", snap));
  bool stop = false;
  if (req.contains("stop")) {
    if (!req["stop"].is_boolean())
      return fail("\"stop\" must be true or false", EINVAL);
    stop = req["stop"].get<bool>();
  }
  return checkpoint_op(name, snap, stop, {});
}

Status Daemon::pre_dump(const std::string &name, const std::string &images, const std::string &parent) {
  auto e = BH_TRY(get(name));
  std::lock_guard lock(e->mu);
  if (!e->watch_fd || e->rec.status.state != "running")
    return fail(fmt::format("container \"{}\" is {}: only a running container can be pre-dumped", name,
                            e->rec.status.state),
                EINVAL);
  ++e->dumps;
  e->standing_dump.reset(); // the monitor's one checkpoint slot
  return context(monitor_checkpoint(records_.paths(name).socket, images, false, true, parent),
                 "pre-dump of " + name);
}

Result<std::shared_ptr<Operation>> Daemon::checkpoint_op(const std::string &name, const std::string &snap,
                                                         bool stop, const std::string &parent) {
  // Checked when asked (a clear 400/409 at once) and again under the lock when the operation runs.
  auto checkpointable = [this, name, snap](const Entry &e) -> Status {
    if (!e.watch_fd || e.rec.status.state != "running")
      return fail(fmt::format("container \"{}\" is {}: only a running container can be checkpointed", name,
                              e.rec.status.state),
                  EINVAL);
    if (snapshots_.exists(name, snap))
      return fail(fmt::format("container {} already has a snapshot \"{}\"", name, snap), EEXIST);
    return {};
  };
  auto e = BH_TRY(get(name));
  {
    std::lock_guard lock(e->mu);
    BH_CHECK(checkpointable(*e));
  }
  return operations_.start(
      "Checkpointing container " + name, "/1.0/containers/" + name + "/snapshots/" + snap,
      [this, name, snap, stop, parent, checkpointable](Operation &op) -> Status {
        auto e = BH_TRY(get(name));
        std::unique_lock lock(e->mu);
        BH_CHECK(checkpointable(*e));
        auto t0 = std::chrono::steady_clock::now();
        auto staging = BH_TRY(snapshots_.stage(name, "ckpt-" + snap));
        std::string images = staging.path() + "/memory";
        if (::mkdir(images.c_str(), 0700) < 0)
          return failf_errno("creating {}", images);
        UniqueFd upper(
            ::open(records_.paths(name).upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!upper)
          return failf_errno("opening {}", records_.paths(name).upper);
        // Relative to the images (see monitor_checkpoint.hpp); the same from the staging
        // directory as from the committed snapshot, which sits at the same depth.
        std::string rel = parent.empty() ? std::string()
                                         : std::filesystem::path(parent).lexically_relative(images).string();
        auto prepared = BH_TRY(prepare_dump(*e, images, stop, rel));
        auto rt = runtime();
        auto t_freeze = std::chrono::steady_clock::now();
        BH_CHECK(context(rt.pause(name), "freezing " + name + " for the checkpoint"));
        op.set_progress("copying", 0, 0);
        auto copied = storage::copy_upper(upper.get(), staging.upper_fd(), &op.cancel_flag(),
                                          [&op](uint64_t b) { op.set_progress("copying", b, 0); });
        Status dumped = copied ? Status{} : context(copied, "copying the upper layer of " + name);
        if (dumped) {
          op.set_progress("dumping", 0, 0);
          dumped = dump_locked(*e, lock, prepared, stop);
        }
        // After a stop the cgroup is gone; otherwise the container runs on, whatever happened.
        if (!stop || !dumped)
          if (auto t = rt.resume(name); !t && dumped)
            dumped = tl::unexpected(with_context(t.error(), "thawing " + name + " after the checkpoint"));
        // The container's pause: its freeze to its thaw (to the dump's end for --stop).
        const auto pause = std::chrono::steady_clock::now() - t_freeze;
        BH_CHECK(dumped);
        auto count = BH_TRY(storage::count_tree(staging.upper_fd()));
        json meta = {{"name", snap},
                     {"id", random_id()},
                     {"created_at", now_unix_ms() / 1000},
                     {"container_state", "frozen"},
                     {"template", e->rec.config.template_name},
                     {"size_bytes", count.size_bytes},
                     {"files", count.files},
                     {"memory", true}};
        BH_CHECK(staging.commit(snap, meta));
        meta["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // Before the freeze (staging, starting CRIU): not part of the container's downtime.
        meta["before_freeze_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(t_freeze - t0).count();
        meta["pause_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(pause).count();
        meta["stopped"] = stop;
        op.set_metadata(meta);
        events_.publish("container-checkpointed", name, {{"snapshot", snap}, {"stopped", stop}});
        return {};
      });
}

Result<std::shared_ptr<Operation>> Daemon::restore_checkpoint(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"snapshot"}, "restore"));
  BH_CHECK(refuse_while_evacuating("restoring " + name));
  return restore_checkpoint_op(name, req);
}

Result<std::shared_ptr<Operation>> Daemon::restore_checkpoint_op(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"snapshot"}, "restore"));
  std::string snap = BH_TRY(string_field(req, "snapshot", false));
  BH_TRY(get(name));
  if (snap.empty()) {
    // The newest snapshot that has memory.
    json list = BH_TRY(snapshots_.list(name));
    for (const auto &m : list)
      if (m.value("memory", false))
        snap = m.value("name", "");
    if (snap.empty())
      return fail("container " + name + " has no checkpoint (bulkheadctl checkpoint " + name + " makes one)",
                  ENOENT);
  }
  BH_CHECK(storage::validate_name("snapshot", snap));
  auto meta = BH_TRY(snapshots_.info(name, snap));
  if (!meta.value("memory", false) || !has_images(snapshots_.memory_path(name, snap)))
    return fail("snapshot " + snap + " of " + name +
                    " has no memory image: it is a disk snapshot (bulkheadctl snapshot restore " + name +
                    " " + snap + " restores its files)",
                EINVAL);
  return operations_.start("Restoring container " + name + " from checkpoint " + snap,
                           "/1.0/containers/" + name, [this, name, snap](Operation &op) -> Status {
                             auto e = BH_TRY(get(name));
                             std::unique_lock lock(e->mu);
                             BH_TRY(snapshots_.info(name, snap));
                             // Whatever runs now is replaced by the checkpoint's instant (as a snapshot
                             // restore does).
                             if (e->watch_fd || e->restart_at_ms) {
                               op.set_progress("stopping", 0, 0);
                               BH_CHECK(stop_locked(*e, lock, 30));
                             }
                             UniqueFd src(::open(snapshots_.upper_path(name, snap).c_str(),
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                             if (!src)
                               return failf_errno("opening {}", snapshots_.upper_path(name, snap));
                             BH_CHECK(restore_locked(*e, src.get(), "checkpoint " + snap, &op));
                             op.set_progress("restoring", 0, 0);
                             BH_CHECK(start_locked(*e, lock, snapshots_.memory_path(name, snap)));
                             events_.publish("container-restored", name, {{"snapshot", snap}});
                             return {};
                           });
}

Status Daemon::stop_stateful_locked(Entry &e, std::unique_lock<std::mutex> &lock) {
  const auto &name = e.rec.config.name;
  if (!e.watch_fd || e.rec.status.state != "running")
    return fail(fmt::format("container \"{}\" is {}: stop --stateful needs a running container", name,
                            e.rec.status.state),
                EINVAL);
  std::string dir = saved_state_path(name);
  BH_CHECK(remove_tree(dir)); // an older saved state is replaced
  if (::mkdir(dir.c_str(), 0700) < 0)
    return failf_errno("creating {}", dir);
  auto prepared = prepare_dump(e, dir, true);
  auto dumped = prepared ? dump_locked(e, lock, *prepared, true) : Status(tl::unexpected(prepared.error()));
  if (!dumped)
    (void)remove_tree(dir);
  else
    events_.publish("container-checkpointed", name, {{"saved_state", true}, {"stopped", true}});
  return dumped;
}

// start_locked's choice: the saved state of a stateful stop (unless `stateless`), else a boot.
std::string Daemon::pending_saved_state(const std::string &name, bool stateless) {
  std::string dir = saved_state_path(name);
  if (!has_images(dir))
    return {};
  if (stateless) {
    (void)remove_tree(dir);
    return {};
  }
  return dir;
}

} // namespace bulkhead::daemon
