// Snapshots (create, list, restore, remove) and backups (export, import) of containers. The layout
// and the consistency they give are in docs/snapshots.md; the tree copies and archives in
// storage/upper_tree.hpp and storage/backup_archive.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/id_ranges.hpp"
#include "daemon/request_fields.hpp"
#include "storage/backup_archive.hpp"
#include "storage/tree.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

Result<std::string> absolute_file(const json &j) {
  std::string file = BH_TRY(string_field(j, "file", true));
  if (file.empty() || file[0] != '/')
    return fail("\"file\" must be an absolute path on the daemon's host (got \"" + file + "\")", EINVAL);
  return file;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

// --- snapshots ---------------------------------------------------------------------------------

Result<json> Daemon::snapshots(const std::string &name) {
  BH_TRY(get(name));
  return snapshots_.list(name);
}

// Copies the upper layer into a staging directory; a running container is frozen for the copy
// (and thawed after, whatever happened), so the copy is one instant of the container's files.
Result<SnapshotStaging> Daemon::copy_upper_locked(Entry &e, const std::string &purpose, Operation *op,
                                                  std::string *consistency, bool freeze) {
  const auto &name = e.rec.config.name;
  const auto &state = e.rec.status.state;
  if (state == "starting" || state == "stopping")
    return fail(fmt::format("container \"{}\" is {}; try again when it is running or stopped", name, state),
                EBUSY);
  bool running = e.watch_fd && state == "running";
  auto staging = BH_TRY(snapshots_.stage(name, purpose));
  UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
  auto rt = runtime();
  const bool frozen_copy = running && freeze;
  if (frozen_copy)
    BH_CHECK(context(rt.pause(name), "freezing " + name + " for the snapshot"));
  auto progress = [op](uint64_t bytes) {
    if (op)
      op->set_progress("copying", bytes, 0);
  };
  // Unfrozen: what was written in the last second (a coarse clock tick is at most a few ms) or
  // while the copy runs is marked unsettled.
  timespec since{};
  ::clock_gettime(CLOCK_REALTIME, &since);
  since.tv_sec -= 1;
  auto r = storage::copy_upper(upper.get(), staging.upper_fd(), op ? &op->cancel_flag() : nullptr, progress,
                               running && !freeze ? &since : nullptr);
  if (frozen_copy)
    if (auto t = rt.resume(name); !t && r)
      r = tl::unexpected(with_context(t.error(), "thawing " + name + " after the snapshot"));
  BH_CHECK(context(r, "copying the upper layer of " + name));
  if (consistency)
    *consistency = running ? (freeze ? "frozen" : "running") : (state == "frozen" ? "frozen" : "stopped");
  return staging;
}

Result<json> Daemon::snapshot_locked(Entry &e, const std::string &snap, Operation &op, bool freeze) {
  const auto &name = e.rec.config.name;
  if (snapshots_.exists(name, snap))
    return fail(fmt::format("container {} already has a snapshot \"{}\"", name, snap), EEXIST);
  std::string consistency;
  auto staging = BH_TRY(copy_upper_locked(e, "snap-" + snap, &op, &consistency, freeze));
  auto count = BH_TRY(storage::count_tree(staging.upper_fd()));
  json meta = {{"name", snap},
               {"id", random_id()},
               {"created_at", now_unix_ms() / 1000},
               {"container_state", consistency},
               {"template", e.rec.config.template_name},
               {"size_bytes", count.size_bytes},
               {"files", count.files}};
  BH_CHECK(staging.commit(snap, meta));
  return meta;
}

Status Daemon::presync_snapshot(const std::string &name, const std::string &snap, Operation &op) {
  BH_CHECK(storage::validate_name("snapshot", snap));
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  return snapshot_locked(*e, snap, op, false).map([](auto &&) {});
}

Result<std::shared_ptr<Operation>> Daemon::create_snapshot(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"name"}, "snapshot"));
  std::string snap = BH_TRY(string_field(req, "name", true));
  BH_CHECK(storage::validate_name("snapshot", snap));
  BH_TRY(get(name));
  if (snapshots_.exists(name, snap))
    return fail(fmt::format("container {} already has a snapshot \"{}\"", name, snap), EEXIST);
  return operations_.start("Snapshotting container " + name, "/1.0/containers/" + name + "/snapshots/" + snap,
                           [this, name, snap](Operation &op) -> Status {
                             auto e = BH_TRY(get(name));
                             std::unique_lock lock(e->mu);
                             auto t0 = std::chrono::steady_clock::now();
                             json meta = BH_TRY(snapshot_locked(*e, snap, op, true));
                             meta["seconds"] = seconds_since(t0);
                             op.set_metadata(meta);
                             events_.publish("snapshot-created", name, {{"snapshot", snap}});
                             return {};
                           });
}

Status Daemon::remove_snapshot(const std::string &name, const std::string &snap) {
  BH_CHECK(storage::validate_name("snapshot", snap));
  auto e = BH_TRY(get(name));
  std::lock_guard lock(e->mu); // not while an export reads it
  BH_CHECK(snapshots_.remove(name, snap));
  events_.publish("snapshot-deleted", name, {{"snapshot", snap}});
  return {};
}

// Replaces the upper layer's content with the snapshot's. The upper directory itself stays (it may
// be the root of a quota filesystem image), so this is a clear + copy, not a rename: a failure half
// way leaves the container stopped with an error saying to restore again (the snapshot is intact).
Status Daemon::restore_locked(Entry &e, int src_fd, const std::string &what, Operation *op) {
  const auto &name = e.rec.config.name;
  UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
  auto r = storage::clear_dir(upper.get());
  if (r)
    r = storage::copy_upper(src_fd, upper.get(), nullptr, [op](uint64_t b) {
      if (op)
        op->set_progress("restoring", b, 0);
    });
  if (!r) {
    e.rec.status.error = "restoring " + what + " failed half way (" + r.error().text() +
                         "): the upper layer is incomplete; restore a snapshot again";
    (void)save_locked(e);
    return context(r, "restoring " + name);
  }
  if (!e.rec.status.error.empty() && e.rec.status.error.starts_with("restoring ")) {
    e.rec.status.error.clear();
    (void)save_locked(e);
  }
  return {};
}

Result<std::shared_ptr<Operation>> Daemon::restore_snapshot(const std::string &name,
                                                            const std::string &snap) {
  BH_CHECK(storage::validate_name("snapshot", snap));
  BH_TRY(get(name));
  BH_TRY(snapshots_.info(name, snap));
  return operations_.start("Restoring container " + name + " to snapshot " + snap, "/1.0/containers/" + name,
                           [this, name, snap](Operation &op) -> Status {
                             auto e = BH_TRY(get(name));
                             std::unique_lock lock(e->mu);
                             BH_TRY(snapshots_.info(name, snap));
                             // A running container is stopped, restored and started again: its files change
                             // under it otherwise (overlayfs does not allow changing its upper layer while
                             // mounted).
                             bool was_running = e->watch_fd || e->restart_at_ms;
                             if (was_running) {
                               op.set_progress("stopping", 0, 0);
                               BH_CHECK(stop_locked(*e, lock, 30));
                             }
                             UniqueFd src = BH_TRY(open_directory(snapshots_.upper_path(name, snap)));
                             BH_CHECK(restore_locked(*e, src.get(), "snapshot " + snap, &op));
                             events_.publish("snapshot-restored", name, {{"snapshot", snap}});
                             if (was_running) {
                               op.set_progress("starting", 0, 0);
                               BH_CHECK(start_locked(*e, lock));
                             }
                             op.set_metadata({{"restarted", static_cast<bool>(was_running)}});
                             return {};
                           });
}

// --- export ------------------------------------------------------------------------------------

Result<std::shared_ptr<Operation>> Daemon::export_container(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"file", "incremental_from", "snapshot", "with_template"}, "export"));
  std::string file = BH_TRY(absolute_file(req));
  std::string base = BH_TRY(string_field(req, "incremental_from", false));
  std::string from = BH_TRY(string_field(req, "snapshot", false));
  bool with_template = false;
  if (req.contains("with_template")) {
    if (!req["with_template"].is_boolean())
      return fail("\"with_template\" must be true or false", EINVAL);
    with_template = req["with_template"].get<bool>();
  }
  BH_TRY(get(name));
  for (const auto &s : {base, from}) {
    if (s.empty())
      continue;
    BH_CHECK(storage::validate_name("snapshot", s)); // it becomes a path component
    BH_TRY(snapshots_.info(name, s));
  }
  struct stat st {};
  if (::lstat(file.c_str(), &st) == 0)
    return fail("export file " + file + " already exists (it is never overwritten)", EEXIST);
  return operations_.start(
      "Exporting container " + name + " to " + file, "/1.0/containers/" + name,
      [this, name, file, base, from, with_template](Operation &op) -> Status {
        auto e = BH_TRY(get(name));
        std::unique_lock lock(e->mu);
        auto t0 = std::chrono::steady_clock::now();
        const auto &config = e->rec.config;
        json manifest = {{"format", storage::kExportFormat},
                         {"kind", base.empty() ? "full" : "incremental"},
                         {"created_at", now_unix_ms() / 1000},
                         {"container", to_json(config)}};
        // The source: a snapshot, a frozen copy of a running container, or the stopped upper.
        std::optional<SnapshotStaging> temp;
        std::string source = records_.paths(name).upper;
        if (!from.empty()) {
          auto meta = BH_TRY(snapshots_.info(name, from));
          manifest["snapshot"] = {{"name", from}, {"id", meta.value("id", "")}};
          source = snapshots_.upper_path(name, from);
        } else if (e->watch_fd) {
          op.set_progress("snapshotting", 0, 0);
          temp.emplace(BH_TRY(copy_upper_locked(*e, "export", &op, nullptr)));
        }
        UniqueFd upper = temp ? UniqueFd(::dup(temp->upper_fd())) : BH_TRY(open_directory(source));
        UniqueFd base_fd;
        if (!base.empty()) {
          auto meta = BH_TRY(snapshots_.info(name, base));
          manifest["base_snapshot"] = {{"name", base}, {"id", meta.value("id", "")}};
          base_fd = BH_TRY(open_directory(snapshots_.upper_path(name, base)));
        }
        auto tmpl = templates_.get(config.template_name);
        if (!tmpl)
          return fail("exporting " + name + ": its template \"" + config.template_name + "\" is gone",
                      ENOENT);
        UniqueFd rootfs = BH_TRY(open_directory(templates_.rootfs_path(config.template_name)));
        op.set_progress("hashing the template", 0, 0);
        manifest["template"] = {{"name", config.template_name},
                                {"digest", BH_TRY(storage::tree_digest(rootfs.get(), &op.cancel_flag()))},
                                {"included", with_template}};
        storage::ExportSource src{upper.get(), base_fd ? base_fd.get() : -1,
                                  with_template ? rootfs.get() : -1};
        auto stats = BH_TRY(storage::write_export(file, manifest, src, &op.cancel_flag(),
                                                  [&op](uint64_t b) { op.set_progress("writing", b, 0); }));
        double secs = seconds_since(t0);
        op.set_metadata({{"file", file},
                         {"kind", manifest["kind"]},
                         {"entries", stats.entries},
                         {"data_bytes", stats.data_bytes},
                         {"archive_bytes", stats.archive_bytes},
                         {"seconds", secs}});
        events_.publish("container-exported", name, {{"file", file}});
        return {};
      });
}

// --- import ------------------------------------------------------------------------------------

Result<std::shared_ptr<Operation>> Daemon::import_container(const json &req) {
  BH_CHECK(known_fields(req, {"file", "name"}, "import"));
  BH_CHECK(refuse_while_evacuating("importing a container"));
  std::string file = BH_TRY(absolute_file(req));
  std::string name = BH_TRY(string_field(req, "name", false));
  // The manifest is read now, so a file that is no export at all is a 400 right away.
  auto reader = BH_TRY(storage::ExportReader::open(file));
  const json &m = reader.manifest();
  if (!m.contains("container") || !m["container"].is_object())
    return fail(file + ": the manifest has no container record", EINVAL);
  auto config = BH_TRY(context(config_from_json(m["container"]), file + ": the container record"));
  if (name.empty())
    name = config.name;
  BH_CHECK(storage::validate_name("container", name));
  std::string kind = m.value("kind", "");
  if (kind != "full" && kind != "incremental")
    return fail(fmt::format("{}: unknown export kind \"{}\"", file, kind), EINVAL);
  if (kind == "full" && find(name))
    return fail("container \"" + name + "\" already exists (import it under another name)", EEXIST);
  if (kind == "incremental" && !find(name))
    return fail(fmt::format("{} is an incremental export: it applies on top of an existing container \"{}\" "
                            "that has its base snapshot",
                            file, name),
                ENOENT);
  auto shared = std::make_shared<storage::ExportReader>(std::move(reader));
  return operations_.start("Importing container " + name + " from " + file, "/1.0/containers/" + name,
                           [this, name, config, kind, shared](Operation &op) -> Status {
                             return kind == "full" ? import_full(*shared, name, config, op)
                                                   : import_incremental(*shared, name, op);
                           });
}

Status Daemon::import_full(storage::ExportReader &reader, const std::string &name,
                           const ContainerConfig &config, Operation &op, bool exact_nics, bool keep_ids) {
  auto t0 = std::chrono::steady_clock::now();
  const json &m = reader.manifest();
  auto progress = [&](uint64_t b) { op.set_progress("extracting", b, reader.file_size()); };
  const json tref = m.value("template", json::object());
  std::string tname = tref.value("name", config.template_name);
  std::string digest = tref.value("digest", "");
  bool included = tref.value("included", false);
  BH_CHECK(context(storage::validate_name("template", tname), "the archive's template"));
  bool made_template = false;
  auto tmpl = templates_.get(tname);
  if (tmpl) {
    UniqueFd rootfs = BH_TRY(open_directory(templates_.rootfs_path(tname)));
    std::string here = BH_TRY(storage::tree_digest(rootfs.get(), &op.cancel_flag()));
    if (!digest.empty() && here != digest)
      return fail(
          fmt::format("template \"{}\" here differs from the exported container's ({} here, {} in the "
                      "archive): import the template it was made from first, or remove this one and "
                      "import an export made with --with-template",
                      tname, here, digest),
          EINVAL);
    if (included) // the archive's copy of it is not needed
      BH_CHECK(reader.skip_template(&op.cancel_flag(), progress));
  } else if (included) {
    op.set_progress("importing the template", 0, reader.file_size());
    BH_TRY(templates_.import_entries(
        tname, "export:" + tname,
        [&](storage::Extractor &x) { return reader.extract_template(x, &op.cancel_flag(), progress); },
        nullptr, &op.cancel_flag()));
    made_template = true;
  } else {
    return fail(
        fmt::format("template \"{}\" (digest {}) does not exist here and the archive does not carry it: "
                    "import that template first, or export with --with-template",
                    tname, digest),
        ENOENT);
  }
  auto undo_template = [&] {
    if (made_template)
      (void)templates_.remove(tname);
  };

  // The container is made as `create` makes it (fresh NIC addresses on the networks that exist
  // here; NICs on missing networks are dropped and reported), then its upper layer is filled.
  json req = {{"name", name},
              {"template", tname},
              {"hostname", config.hostname},
              {"env", config.env},
              {"restart", restart_policy_text(config.restart)},
              {"onboot", config.onboot}};
  // A privileged container's files are owned by real root: it stays privileged whatever the default
  // here. An unprivileged one stays unprivileged, in its own range or one of this host.
  if (!config.idmap)
    req["privileged"] = true;
  else if (keep_ids)
    req["idmap"] = to_json(*config.idmap);
  else
    req["unprivileged"] = true;
  if (config.limits.memory_bytes)
    req["memory"] = *config.limits.memory_bytes;
  if (config.limits.cpus)
    req["cpus"] = *config.limits.cpus;
  if (config.limits.pids)
    req["pids"] = *config.limits.pids;
  if (!config.init.empty())
    req["init"] = config.init;
  // A disk quota travels when this host's backend keeps one; a "dir" host has none to give (the
  // import would otherwise be refused), so the limit is dropped and reported like a network.
  bool dropped_disk = false;
  if (config.disk.bytes || config.disk.inodes) {
    if (options_.storage == "dir") {
      dropped_disk = true;
    } else {
      if (config.disk.bytes)
        req["disk"] = *config.disk.bytes;
      if (config.disk.inodes)
        req["disk_inodes"] = *config.disk.inodes;
    }
  }
  json nets = json::array(), dropped = json::array();
  for (const auto &n : config.nets) {
    if (!networks_.info(n.network)) {
      if (exact_nics) {
        undo_template();
        return fail(fmt::format("container {} uses network \"{}\", which does not exist on {}", name,
                                n.network, options_.host_name),
                    ENOENT);
      }
      dropped.push_back(n.network);
      continue;
    }
    json spec = {{"network", n.network}};
    // A migrated container keeps its addresses (its MACs follow from its name and NIC index), so
    // its peers keep talking to it; its caps travel too.
    if (exact_nics) {
      if (!n.ipv4.empty())
        spec["ipv4"] = n.ipv4.substr(0, n.ipv4.find('/'));
      if (!n.ipv6.empty())
        spec["ipv6"] = n.ipv6.substr(0, n.ipv6.find('/'));
      if (!n.ingress.empty())
        spec["ingress"] = n.ingress;
      if (!n.egress.empty())
        spec["egress"] = n.egress;
    }
    nets.push_back(std::move(spec));
  }
  if (!nets.empty())
    req["nets"] = nets;
  if (auto made = create(req); !made) {
    undo_template();
    return tl::unexpected(made.error());
  }
  auto fail_undo = [&](const Error &err) -> Status {
    (void)destroy(name, true);
    undo_template();
    return tl::unexpected(err);
  };
  auto e = find(name);
  if (!e)
    return fail_undo(Error{ENOENT, "container " + name + " vanished during its import"});
  // Filled under the container's lock; undone (destroy takes the lock) after it is released.
  auto fill = [&]() -> Status {
    std::unique_lock lock(e->mu);
    if (!config.stop_signal.empty()) {
      e->rec.config.stop_signal = config.stop_signal;
      BH_CHECK(save_locked(*e));
    }
    UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
    storage::Extractor x(upper.get(), false, true);
    if (auto shift = id_shift(config.idmap, e->idmap))
      x.shift_ids(*shift);
    BH_CHECK(reader.extract_upper(x, &op.cancel_flag(), progress));
    // An export of a snapshot brings that snapshot along (same name and id), so incremental
    // exports based on it apply here too.
    if (m.contains("snapshot") && m["snapshot"].is_object())
      BH_CHECK(import_snapshot_locked(*e, m["snapshot"].value("name", ""), m["snapshot"].value("id", ""),
                                      upper.get()));
    return {};
  };
  if (auto r = fill(); !r)
    return fail_undo(r.error());
  op.set_metadata({{"name", name},
                   {"template_imported", made_template},
                   {"dropped_networks", dropped},
                   {"dropped_disk_limit", dropped_disk},
                   {"archive_bytes", reader.file_size()},
                   {"seconds", seconds_since(t0)}});
  events_.publish("container-imported", name);
  return {};
}

Status Daemon::import_snapshot_locked(Entry &e, const std::string &snap, const std::string &id,
                                      int upper_fd) {
  const auto &name = e.rec.config.name;
  BH_CHECK(storage::validate_name("snapshot", snap));
  if (snapshots_.exists(name, snap))
    return fail(fmt::format("container {} already has a snapshot \"{}\"", name, snap), EEXIST);
  auto staging = BH_TRY(snapshots_.stage(name, "snap-" + snap));
  BH_CHECK(storage::copy_upper(upper_fd, staging.upper_fd(), nullptr));
  auto count = BH_TRY(storage::count_tree(staging.upper_fd()));
  return staging.commit(snap, {{"name", snap},
                               {"id", id.empty() ? random_id() : id},
                               {"created_at", now_unix_ms() / 1000},
                               {"container_state", "imported"},
                               {"template", e.rec.config.template_name},
                               {"size_bytes", count.size_bytes},
                               {"files", count.files}});
}

// An incremental archive applies to a stopped container that has its base snapshot (same id): the
// base is copied to a staging tree, the deletions and changed entries applied there, and only then
// does the result replace the container's upper layer; a bad archive leaves the container as it was.
Status Daemon::import_incremental(storage::ExportReader &reader, const std::string &name, Operation &op) {
  auto t0 = std::chrono::steady_clock::now();
  const json &m = reader.manifest();
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  if (e->watch_fd || e->restart_at_ms)
    return fail("container \"" + name + "\" is " + e->rec.status.state +
                    ": an incremental import replaces its upper layer, stop it first",
                EBUSY);
  const json base = m.value("base_snapshot", json::object());
  std::string bname = base.value("name", ""), bid = base.value("id", "");
  BH_CHECK(context(storage::validate_name("snapshot", bname), "the archive's base snapshot"));
  auto meta = snapshots_.info(name, bname);
  if (!meta)
    return fail(
        fmt::format("container {} has no snapshot \"{}\", the base of this incremental export", name, bname),
        ENOENT);
  if (meta->value("id", "") != bid)
    return fail(
        fmt::format("snapshot \"{}\" of container {} is not the base of this incremental export (id {} "
                    "here, {} in the archive)",
                    bname, name, meta->value("id", ""), bid),
        EINVAL);
  if (m.value("template", json::object()).value("included", false))
    return fail("an incremental export does not carry a template", EINVAL);
  auto staging = BH_TRY(snapshots_.stage(name, "import"));
  {
    UniqueFd src = BH_TRY(open_directory(snapshots_.upper_path(name, bname)));
    op.set_progress("copying the base", 0, 0);
    BH_CHECK(storage::copy_upper(src.get(), staging.upper_fd(), &op.cancel_flag()));
  }
  std::vector<std::string> deletions = BH_TRY(reader.deletions());
  BH_CHECK(context(storage::remove_paths(staging.upper_fd(), deletions), "applying the deletions"));
  storage::Extractor x(staging.upper_fd(), false, true);
  if (auto shift = id_shift(idmap_of_manifest(m), e->idmap))
    x.shift_ids(*shift);
  BH_CHECK(reader.extract_upper(x, &op.cancel_flag(),
                                [&](uint64_t b) { op.set_progress("extracting", b, reader.file_size()); }));
  op.set_progress("replacing the upper layer", 0, 0);
  UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
  BH_CHECK(restore_locked(*e, staging.upper_fd(), "the incremental import", &op));
  if (m.contains("snapshot") && m["snapshot"].is_object()) {
    std::string snap = m["snapshot"].value("name", "");
    if (!snapshots_.exists(name, snap))
      BH_CHECK(import_snapshot_locked(*e, snap, m["snapshot"].value("id", ""), upper.get()));
  }
  op.set_metadata({{"name", name},
                   {"deletions", deletions.size()},
                   {"archive_bytes", reader.file_size()},
                   {"seconds", seconds_since(t0)}});
  events_.publish("container-imported", name, {{"incremental", true}});
  return {};
}

} // namespace bulkhead::daemon
