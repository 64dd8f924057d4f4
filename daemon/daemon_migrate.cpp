// Migration of a container to a paired remote (docs/migration.md): `bulkheadctl migrate NAME REMOTE`.
// The container travels as a full export (daemon_snapshots.cpp) over the peer channel
// (daemon/peer_server.cpp, migration/peer_tls.hpp); the target imports it under the same name with
// the same NIC addresses and MACs, starts it when it ran, and answers only then. The source removes
// its copy only after that answer, so at every failure exactly one host has the container.
//
// | step | source daemon (operation "migrate")            | target daemon (peer handlers)        |
// |------|------------------------------------------------|--------------------------------------|
// | 1    | connect_remote (TLS, pinned) + hello           | handshake of peer_server.cpp         |
// | 2    | {"op":"migrate.check","name","template",       | refuses: the name exists here, a     |
// |      |  "digest","networks":[..]}                     | network is missing, the template     |
// |      |                                                | differs -> {"ok":false,"error"}; else|
// |      |                                                | {"ok":true,"template_present":B,     |
// |      |                                                |  "checksums":[algorithms it knows]}  |
// | 3    | stops the container (cold; downtime starts);   | -                                    |
// |      | exports it to <root>/migrate-ID.bhx (with the  |                                      |
// |      | template when the target lacks it)             |                                      |
// | 4    | {"op":"migrate.receive","name","bytes",        | checks again, makes                  |
// |      |  "running","checksum"}                         | <root>/migrate-in-ID.bhx -> {"ok"}   |
// | 5    | {"op":"migrate.chunk"} + <= 4 MiB payload, ... | appends, hashes (the checksum named  |
// |      |                                                | in 4; none named: SHA-256, an older  |
// |      |                                                | source)                              |
// | 6    | {"op":"migrate.end","bytes",CHECKSUM: hex}     | checks size and hash, imports (same  |
// |      |                                                | name, addresses, MACs, limits),      |
// |      |                                                | starts it when it ran, removes the   |
// |      |                                                | file -> {"ok":true,"state"}          |
// | 7    | destroys its copy; removes the file            | -                                    |
// A failure at 1-6 (either side, or the connection cut) makes the target remove whatever it made
// and the source start its copy again when it was running; the temporary files always go.
//
// Live (--live) adds a pre-copy before step 3 and differs in steps 3-6:
//
// | step | source daemon (live)                           | target daemon                        |
// |------|------------------------------------------------|--------------------------------------|
// | 2b   | {"op":"migrate.receive","name","running":true, | checks as in 4, makes                |
// |      |  "memory_snapshot":SNAP,"precopy":true,        | <root>/migrate-in-ID.memory -> {"ok"}|
// |      |  "checksum"}                                   |                                      |
// | 2b'  | disk pre-sync: snapshot SNAP-base copied while | writes migrate-in-ID.base.bhx; once  |
// |      | it runs (presync_snapshot), its full export as | complete: arrival marker, imports it |
// |      | {"op":"migrate.base","bytes"} +                | (the container exists here, stopped; |
// |      | {"op":"migrate.basechunk"} payloads            | any later failure removes it)        |
// | 2c   | round K = 1, 2, ... (<= 6) while it runs: a    | writes pre-K/FILE; pre-K/parent ->   |
// |      | CRIU pre-dump into <root>/migrate-ID.pre/pre-K | ../pre-(K-1) as CRIU links them      |
// |      | (pages changed since round K-1 only: soft-dirty|                                      |
// |      | tracking), each file as {"op":"migrate.prefile"|                                      |
// |      | ,"round":K,"file"} + payloads; stops when a    |                                      |
// |      | round moved < 4 MiB or did not shrink by 1/4   |                                      |
// | 3    | checkpoint --stop into snapshot SNAP with the  | -                                    |
// |      | last round as parent (downtime starts at the   |                                      |
// |      | freeze): only pages dirtied since it are dumped|                                      |
// | 4    | {"op":"migrate.export","bytes"}: SNAP exported | the export's size (no answer)        |
// |      | incrementally against SNAP-base                |                                      |
// | 5    | migrate.chunk ... as above, then each file of  | appends, hashes every payload of 2b-5|
// |      | SNAP/memory as {"op":"migrate.memfile","file"} |                                      |
// | 6    | {"op":"migrate.end","bytes",CHECKSUM: hex,     | checks, links memory/parent -> pre-N,|
// |      |  "parent_round":N}                             | applies the export in place to the   |
// |      |                                                | arrival's upper, drops SNAP-base,    |
// |      |                                                | restores from the images (CRIU reads |
// |      |                                                | unchanged pages through the parent   |
// |      |                                                | links) -> {"ok"}                     |
// A failed pre-dump round ends the pre-copy (the final dump takes the rest); any other failure
// before step 3 changes nothing here. After step 3 the source restores its own checkpoint (its
// parent rounds are kept until then), so the container runs on here with its memory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/id_ranges.hpp"
#include "daemon/peer_file_sender.hpp"
#include "daemon/request_fields.hpp"
#include "migration/criu.hpp"
#include "storage/backup_archive.hpp"
#include "storage/stream_checksum.hpp"
#include "storage/tree.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kConnectTimeoutS = 10;
// A read on the channel waits this long at most: the target's import and start of a large
// container under a slow machine take minutes, and the answer comes only after them.
constexpr int kTransferTimeoutS = 900;
constexpr int kStopTimeoutS = 30;
// Pre-copy (live): at most this many rounds while the container runs, unless the request says
// (0 = stop and copy); the rounds stop early once one moved less than kPreCopyDoneBytes, or did not
// shrink below 3/4 of the one before (the container dirties memory as fast as it goes: more rounds
// would not shorten the freeze).
constexpr int kMaxPreCopyRounds = 6;
constexpr uint64_t kPreCopyDoneBytes = uint64_t{4} << 20;
// The target takes no more rounds than this (a bound on what a peer can make it store).
constexpr int kMaxPreCopyRoundsAccepted = 16;

// Removes a file when it goes out of scope (the transfer's temporary exports).
struct FileGuard {
  std::string path;
  ~FileGuard() {
    if (!path.empty())
      ::unlink(path.c_str());
  }
};

// Runs one of this daemon's operations to its end: its error, or its finished JSON.
Result<json> finish(Result<std::shared_ptr<Operation>> op, const std::string &what) {
  if (!op)
    return tl::unexpected(with_context(op.error(), what));
  (*op)->wait(-1);
  json j = (*op)->to_json();
  if (j.value("status", "") != "success")
    return fail(fmt::format("{}: {}", what, j.value("error", std::string("?"))), EIO);
  return j;
}

// The remote's refusals come as "ADDR: message" (PeerConnection::request); the errors here name the
// remote and its address once, in front.
Error from_remote(Error e, const std::string &address) {
  if (e.message.rfind(address + ": ", 0) == 0)
    e.message.erase(0, address.size() + 2);
  return e;
}

// Removes a directory tree when it goes out of scope (the pre-copy rounds' images).
struct DirGuard {
  std::string path;
  ~DirGuard() {
    if (!path.empty())
      (void)remove_tree(path);
  }
};

// The bytes of memory pages in a CRIU image directory (what a pre-copy round moved).
uint64_t page_bytes(const std::string &dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto &f : std::filesystem::directory_iterator(dir, ec))
    if (f.is_regular_file(ec) && f.path().filename().string().rfind("pages-", 0) == 0)
      n += f.file_size(ec);
  return n;
}

// One payload of a memory image sent by the source, appended to DIR/FILE; FILE is a plain name.
Status append_image(const std::string &dir, const std::string &file, std::string_view data) {
  if (file.empty() || file == "." || file == ".." || file == "parent" || file.find('/') != std::string::npos)
    return fail("a bad memory image name \"" + file + "\" in a migration", EPROTO);
  std::string path = dir + "/" + file;
  UniqueFd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!f)
    return failf_errno("creating {}", path);
  return write_all(f.get(), data, path);
}

int64_t ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

// --- source ------------------------------------------------------------------------------------

Result<std::shared_ptr<Operation>> Daemon::migrate(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"remote", "mode", "precopy_rounds"}, "migrate"));
  std::string remote = BH_TRY(string_field(req, "remote", true));
  std::string mode = BH_TRY(string_field(req, "mode", false));
  if (!mode.empty() && mode != "cold" && mode != "live")
    return fail("\"mode\" must be \"cold\" or \"live\" (got \"" + mode + "\")", EINVAL);
  int precopy_rounds = kMaxPreCopyRounds;
  if (req.contains("precopy_rounds")) {
    const auto &r = req["precopy_rounds"];
    if (!r.is_number_integer() || r.get<int64_t>() < 0 || r.get<int64_t>() > kMaxPreCopyRoundsAccepted)
      return fail(fmt::format("\"precopy_rounds\" must be a whole number from 0 to {} (got {})",
                              kMaxPreCopyRoundsAccepted, r.dump()),
                  EINVAL);
    precopy_rounds = r.get<int>();
  }
  if (remote.empty() || !peer_remote(remote))
    return fail("no remote named \"" + remote +
                    "\" (bulkheadctl remote list shows them, remote add pairs one; in a cluster, any host "
                    "that joined its trust by `cluster join`)",
                ENOENT);
  auto e = BH_TRY(get(name));
  {
    std::lock_guard lock(e->mu);
    const auto &state = e->rec.status.state;
    if (!e->rec.status.fenced_by.empty())
      return fail(fmt::format("container \"{}\" is fenced: the cluster placed it on host {}", name,
                              e->rec.status.fenced_by),
                  EBUSY);
    if (state == "starting" || state == "stopping")
      return fail(fmt::format("container \"{}\" is {}; try again when it is running or stopped", name, state),
                  EBUSY);
    bool running = e->watch_fd && state == "running";
    if (mode.empty())
      mode = running ? "live" : "cold";
    if (mode == "cold" && req.contains("precopy_rounds"))
      return fail("\"precopy_rounds\" is for a live migration (memory copied while it runs), not a cold one",
                  EINVAL);
    if (mode == "live" && !running)
      return fail(fmt::format("container \"{}\" is {}: live migration moves a running container's memory "
                              "(--cold moves a stopped one)",
                              name, state),
                  EINVAL);
  }
  return operations_.start("Migrating container " + name + " to " + remote, "/1.0/containers/" + name,
                           [this, name, remote, mode, precopy_rounds](Operation &op) {
                             return migrate_work(name, remote, mode, op, precopy_rounds);
                           });
}

Result<json> Daemon::migrate_check_request(const std::string &name, const ContainerConfig &config,
                                           Operation &op, std::map<std::string, std::string> *digests,
                                           bool live) {
  std::string digest;
  if (digests && digests->count(config.template_name)) {
    digest = (*digests)[config.template_name];
  } else {
    UniqueFd rootfs(::open(templates_.rootfs_path(config.template_name).c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!rootfs)
      return failf_errno("migrating {}: opening its template {}", name,
                         templates_.rootfs_path(config.template_name));
    op.set_progress("hashing the template " + config.template_name, 0, 0);
    digest = BH_TRY(storage::tree_digest(rootfs.get(), &op.cancel_flag()));
    if (digests)
      (*digests)[config.template_name] = digest;
  }
  json networks = json::array();
  for (const auto &n : config.nets)
    networks.push_back(n.network);
  json req{{"op", "migrate.check"},
           {"name", name},
           {"template", config.template_name},
           {"digest", digest},
           {"networks", networks}};
  // Its memory follows: CRIU's images carry its id range, which the target must have free.
  if (live && config.idmap)
    req["idmap"] = to_json(*config.idmap);
  return req;
}

Status Daemon::migrate_work(const std::string &name, const std::string &remote_name, const std::string &mode,
                            Operation &op, int precopy_rounds) {
  auto remote = BH_TRY(peer_remote(remote_name));
  const std::string where = fmt::format("remote {} ({})", remote.name, remote.address);
  auto e = BH_TRY(get(name));
  ContainerConfig config;
  bool was_running = false;
  {
    std::lock_guard lock(e->mu);
    config = e->rec.config;
    was_running = e->watch_fd && e->rec.status.state == "running";
  }
  // In a cluster the target takes the placement over once the container exists there; until this
  // returns, the cluster thread neither fences this copy nor publishes its placement.
  cluster_busy(name, true);
  struct Unbusy {
    Daemon *d;
    const std::string &name;
    ~Unbusy() { d->cluster_busy(name, false); }
  } unbusy{this, name};

  op.set_progress("connecting", 0, 0);
  auto conn = connect_remote(remote, *identity_, kConnectTimeoutS);
  if (!conn)
    return fail(fmt::format("migrating {}: cannot reach {}: {}", name, where, conn.error().message),
                conn.error().code);
  conn->set_timeout(kTransferTimeoutS);

  // Step 2: ask before anything changes here.
  json check_req = BH_TRY(migrate_check_request(name, config, op, nullptr, mode == "live"));
  auto check = conn->request(check_req);
  if (!check)
    return tl::unexpected(with_context(from_remote(check.error(), remote.address),
                                       fmt::format("migrating {} to {}", name, where)));
  bool template_present = check->header.value("template_present", false);
  auto sum = BH_TRY(checksum_for_receiver(check->header));

  auto t_start = std::chrono::steady_clock::now();
  const bool live = mode == "live";
  const std::string snap = live ? fmt::format("migrate-{}", now_unix_ms()) : std::string();
  // Every file of the move goes through it: one checksum, one count of the bytes sent.
  PeerFileSender sender(*conn, sum);
  auto remote_error = [&](const Error &err) {
    return with_context(from_remote(err, remote.address), fmt::format("migrating {} to {}", name, where));
  };
  // Streams the file at `path` (opened as `file`, `bytes` long) as `chunk_op` payloads, with
  // the operation's progress and its cancellation between chunks.
  auto stream_file = [&](int file, const std::string &path, uint64_t bytes, const char *chunk_op,
                         const char *stage) -> Status {
    return sender.sized(file, path, bytes, {{"op", chunk_op}}, [&]() -> Status {
      if (op.cancelled())
        return fail("cancelled", ECANCELED);
      op.set_progress(stage, sender.sent(), 0);
      return {};
    });
  };
  // The disk pre-sync's base snapshot (live): removed whatever happens (on success the source copy
  // goes with it).
  const std::string base = live ? snap + "-base" : std::string();
  struct BaseSnapshot {
    Daemon *d;
    const std::string &name, &snap;
    bool made = false;
    ~BaseSnapshot() {
      if (made)
        (void)d->remove_snapshot(name, snap);
    }
  } base_snapshot{this, name, base};
  uint64_t presync_bytes = 0;
  int64_t presync_ms = 0;

  // Pre-copy (live): the target takes the transfer now, and each round's pages go while the
  // container runs; only what it dirtied since the last round waits for the freeze. A round that
  // fails (a kernel without soft-dirty tracking, say) ends the pre-copy: the final dump then holds
  // whatever the rounds so far did not.
  DirGuard predir;
  std::string parent; // the last good round's images, the final dump's parent
  int rounds = 0;
  uint64_t precopy_bytes = 0;
  std::string precopy_note;
  json round_log = json::array(); // per round: pages moved and the time it took (dump + send)
  if (live) {
    auto head = conn->request({{"op", "migrate.receive"},
                               {"name", name},
                               {"source_host", options_.host_name},
                               {"running", true},
                               {"memory_snapshot", snap},
                               {"precopy", true},
                               {"checksum", sum.algorithm()}});
    if (!head)
      return tl::unexpected(remote_error(head.error()));
    predir.path = options_.root + "/migrate-" + random_id() + ".pre";
    // 0711: if the source must restore its own checkpoint, CRIU reads the pre-copy pages (the
    // checkpoint's parents) through this directory, as the range's root for an unprivileged one.
    if (::mkdir(predir.path.c_str(), 0711) < 0) {
      auto err = failf_errno("creating {}", predir.path);
      predir.path.clear();
      return err;
    }
    // Disk pre-sync: the upper layer goes now, while the container runs (a copy taken without
    // freezing it, as a full export of that base snapshot; the target imports it at once); after
    // the freeze only what differs from the base goes, as an incremental export (step 4).
    {
      auto t_presync = std::chrono::steady_clock::now();
      op.set_progress("pre-sync of the disk", sender.sent(), 0);
      BH_CHECK(context(presync_snapshot(name, base, op), "migrating " + name + ": the disk pre-sync"));
      base_snapshot.made = true;
      FileGuard basefile{options_.root + "/migrate-" + random_id() + ".base.bhx"};
      if (auto x = finish(
              export_container(
                  name, {{"file", basefile.path}, {"snapshot", base}, {"with_template", !template_present}}),
              "migrating " + name + ": exporting its disk pre-sync to " + basefile.path);
          !x)
        return tl::unexpected(x.error());
      UniqueFd file(::open(basefile.path.c_str(), O_RDONLY | O_CLOEXEC));
      struct stat bst {};
      if (!file || ::fstat(file.get(), &bst) < 0)
        return failf_errno("migrating {}: opening {}", name, basefile.path);
      presync_bytes = static_cast<uint64_t>(bst.st_size);
      auto s = [&]() -> Status {
        BH_CHECK(conn->send({{"op", "migrate.base"}, {"bytes", presync_bytes}}));
        return stream_file(file.get(), basefile.path, presync_bytes, "migrate.basechunk",
                           "pre-sync of the disk");
      }();
      if (!s)
        return tl::unexpected(remote_error(s.error()));
      presync_ms = ms_since(t_presync);
    }
    uint64_t last = 0;
    for (int k = 1; k <= precopy_rounds; ++k) {
      if (op.cancelled())
        return fail("cancelled", ECANCELED);
      std::string dir = fmt::format("{}/pre-{}", predir.path, k);
      if (::mkdir(dir.c_str(), 0700) < 0)
        return failf_errno("creating {}", dir);
      op.set_progress(fmt::format("pre-copy round {}", k), sender.sent(), 0);
      auto t_round = std::chrono::steady_clock::now();
      if (auto d = pre_dump(name, dir, k > 1 ? fmt::format("../pre-{}", k - 1) : std::string()); !d) {
        precopy_note = d.error().text();
        (void)remove_tree(dir);
        fmt::print(
            stderr,
            "bulkheadd: warning: migrating {}: pre-copy round {} failed, the final dump takes the rest: {}\n",
            name, k, precopy_note);
        break;
      }
      uint64_t bytes = page_bytes(dir);
      if (auto s = sender.directory(dir, {{"op", "migrate.prefile"}, {"round", k}}); !s)
        return tl::unexpected(remote_error(s.error()));
      parent = dir;
      rounds = k;
      precopy_bytes += bytes;
      round_log.push_back({{"round", k}, {"bytes", bytes}, {"ms", ms_since(t_round)}});
      if (bytes < kPreCopyDoneBytes || (k > 1 && bytes * 4 > last * 3))
        break;
      last = bytes;
    }
  }

  // Step 3: from here on, a failure brings the source copy back as it was.
  auto t_down = std::chrono::steady_clock::now();
  // Live only: a cold move has no checkpoint, so its report has neither.
  std::optional<int64_t> before_freeze_ms, criu_dump_ms;
  if (live) {
    op.set_progress("checkpointing", sender.sent(), 0);
    auto c = finish(checkpoint_op(name, snap, true, parent), "migrating " + name + ": checkpointing it");
    if (!c)
      return tl::unexpected(c.error());
    // The downtime starts at the freeze, after the checkpoint started CRIU (daemon_checkpoint.cpp).
    before_freeze_ms = (*c)["metadata"].value("before_freeze_ms", int64_t{0});
    t_down += std::chrono::milliseconds(*before_freeze_ms);
    if (auto criu = migration::log_duration_ms(snapshots_.memory_path(name, snap) + "/dump.log"))
      criu_dump_ms = *criu;
  } else if (was_running) {
    op.set_progress("stopping", 0, 0);
    BH_CHECK(context(stop(name, kStopTimeoutS), "migrating " + name + ": stopping it"));
  }
  // Where the downtime goes (the report's "phases_ms"): stop or final dump, export, sending, and
  // the target's import and start or restore.
  json phases = json::object();
  auto phase_end = [&, t = t_down](const char *what) mutable {
    phases[what] = ms_since(t);
    t = std::chrono::steady_clock::now();
  };
  phase_end(live ? "dump" : "stop");
  auto restore_source = [&](Error err) -> Status {
    // The target may have taken the placement before it failed: this host owns the container again.
    if (auto r = take_placement(name, ""); !r)
      err.message += fmt::format(" (and taking its placement back: {})", r.error().message);
    if (live) {
      // Back running here with its memory, from the checkpoint the migration made (its pages
      // partly in the pre-copy rounds, still here until this function returns).
      if (auto r = finish(restore_checkpoint_op(name, {{"snapshot", snap}}), "restoring it here"); !r)
        err.message += fmt::format(" (and {})", r.error().message);
      (void)remove_snapshot(name, snap);
    } else if (was_running) {
      if (auto s = start(name); !s)
        err.message += fmt::format(" (and starting {} here again failed: {})", name, s.error().text());
    }
    return tl::unexpected(err);
  };
  FileGuard tmp{options_.root + "/migrate-" + random_id() + ".bhx"};
  op.set_progress("exporting", sender.sent(), 0);
  json exreq = {{"file", tmp.path}, {"with_template", !template_present}};
  if (live) {
    exreq["snapshot"] = snap;
    // Only what changed since the pre-sync; the template went with it.
    exreq["incremental_from"] = base;
    exreq["with_template"] = false;
  }
  if (auto x = finish(export_container(name, exreq), "migrating " + name + ": exporting it to " + tmp.path);
      !x)
    return restore_source(x.error());
  phase_end("export");
  UniqueFd file(::open(tmp.path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!file || ::fstat(file.get(), &st) < 0)
    return restore_source(Error{errno, "migrating " + name + ": opening its export " + tmp.path});
  uint64_t total = static_cast<uint64_t>(st.st_size);

  // Steps 4-6.
  json target_timing = json::object();
  auto send_all = [&]() -> Status {
    if (live) {
      BH_CHECK(conn->send({{"op", "migrate.export"}, {"bytes", total}}));
    } else {
      BH_CHECK(conn->request({{"op", "migrate.receive"},
                              {"name", name},
                              {"source_host", options_.host_name},
                              {"bytes", total},
                              {"running", was_running},
                              {"checksum", sum.algorithm()}}));
    }
    BH_CHECK(stream_file(file.get(), tmp.path, total, "migrate.chunk", "sending"));
    if (live) // the final dump's images: a flat directory of files
      BH_CHECK(sender.directory(snapshots_.memory_path(name, snap), {{"op", "migrate.memfile"}}));
    phase_end("send");
    op.set_progress(was_running ? "importing and starting on the remote" : "importing on the remote",
                    sender.sent(), sender.sent());
    auto answer = BH_TRY(conn->request({{"op", "migrate.end"},
                                        {"bytes", sender.sent()},
                                        {sum.algorithm(), sum.hex_digest()},
                                        {"parent_round", rounds}}));
    if (answer.header.contains("timing") && answer.header["timing"].is_object())
      target_timing = answer.header["timing"];
    return {};
  };
  if (auto s = send_all(); !s)
    return restore_source(remote_error(s.error()));
  phase_end(live ? "import_and_restore" : "import_and_start");
  int64_t downtime_ms = was_running ? ms_since(t_down) : 0;

  // Step 7: the remote runs it; this copy goes.
  op.set_progress("removing the source copy", 0, 0);
  if (auto d = destroy(name, true); !d)
    return fail(
        fmt::format("{} now runs on {}, but removing it here failed: {}", name, where, d.error().text()),
        d.error().code);
  json meta = {{"name", name},
               {"remote", remote.name},
               {"address", remote.address},
               {"mode", mode},
               {"bytes", sender.sent()},
               {"template_sent", !template_present},
               {"was_running", was_running},
               {"downtime_ms", downtime_ms},
               {"total_ms", ms_since(t_start)},
               {"iterations", rounds},
               {"precopy_bytes", precopy_bytes},
               {"presync_bytes", presync_bytes},
               {"presync_ms", presync_ms},
               {"export_bytes", total},
               {"phases_ms", phases},
               {"target_ms", target_timing},
               {"precopy_rounds", round_log}};
  if (!precopy_note.empty())
    meta["precopy_stopped"] = precopy_note;
  if (before_freeze_ms)
    meta["before_freeze_ms"] = *before_freeze_ms;
  if (criu_dump_ms)
    meta["criu_dump_ms"] = *criu_dump_ms;
  op.set_metadata(meta);
  events_.publish("container-migrated", name, {{"remote", remote.name}, {"mode", mode}});
  return {};
}

// --- target ------------------------------------------------------------------------------------

// The arrival's upper layer holds the pre-sync's base exactly (nothing ran it since its import), so
// the final export applies in place: its deletions, then its entries. No staging copy of the base
// as an incremental import makes (a failure here destroys the arrival anyway): the freeze pays only
// for what changed.
Status Daemon::apply_migration_delta(storage::ExportReader &reader, const std::string &name, Operation &op) {
  if (reader.manifest().value("template", json::object()).value("included", false))
    return fail("an incremental export does not carry a template", EINVAL);
  auto deletions = BH_TRY(reader.deletions());
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  if (e->watch_fd)
    return fail("container \"" + name + "\" runs here already: its arrival cannot take the final export",
                EBUSY);
  UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
  BH_CHECK(context(storage::remove_paths(upper.get(), deletions), "applying the deletions of " + name));
  storage::Extractor x(upper.get(), false, true);
  return reader.extract_upper(x, &op.cancel_flag(),
                              [&](uint64_t b) { op.set_progress("extracting", b, reader.file_size()); });
}

// At start, before anything else can migrate: what a killed daemon left of migrations. An arrival
// it had not answered yet goes (the source kept its copy); transfer files and images go.
void Daemon::finish_interrupted_migrations() {
  UniqueFd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) {
    fmt::print(stderr, "bulkheadd: warning: opening {}: {}\n", options_.root, std::strerror(errno));
    return;
  }
  std::error_code ec;
  for (const auto &f : std::filesystem::directory_iterator(options_.root, ec)) {
    std::string fname = f.path().filename().string();
    if (fname.rfind("migrate-", 0) != 0)
      continue;
    if (fname.ends_with(".incoming")) {
      auto name = read_file(f.path().string());
      if (name && storage::validate_name("container", *name) && find(*name)) {
        fmt::print(stderr, "bulkheadd: {} arrived by a migration that never finished; removing it\n", *name);
        if (auto d = destroy(*name, true); !d)
          fmt::print(stderr, "bulkheadd: warning: removing {}: {}\n", *name, d.error().text());
      }
    }
    // A transfer file, an image directory or a marker: remove_tree_at takes each kind.
    if (auto r = storage::remove_tree_at(root.get(), fname); !r)
      fmt::print(stderr, "bulkheadd: warning: {}\n", r.error().text());
  }
}

void Daemon::register_migration_handlers() {
  peers_->on("migrate.check", [this](migration::PeerConnection &c, const TrustedPeer &,
                                     const migration::PeerMessage &m) { return serve_migrate_check(c, m); });
  peers_->on("migrate.receive",
             [this](migration::PeerConnection &c, const TrustedPeer &p, const migration::PeerMessage &m) {
               return serve_migrate_receive(c, p, m);
             });
}

namespace {

// What both requests check: a valid name that is free here and networks that exist here.
Status check_incoming(const json &h, const std::string &host, Networks &networks,
                      const std::function<bool(const std::string &)> &exists) {
  if (!h.contains("name") || !h["name"].is_string())
    return fail("a migration request needs a container \"name\"", EINVAL);
  std::string name = h["name"];
  BH_CHECK(storage::validate_name("container", name));
  if (exists(name))
    return fail(fmt::format("container \"{}\" already exists on {}", name, host), EEXIST);
  if (h.contains("networks")) {
    if (!h["networks"].is_array())
      return fail("\"networks\" must be a list of names", EINVAL);
    for (const auto &n : h["networks"])
      if (!n.is_string() || !networks.info(n.get<std::string>()))
        return fail(
            fmt::format("container {} uses network \"{}\", which does not exist on {} (create it there "
                        "with the same name first)",
                        name, n.is_string() ? n.get<std::string>() : n.dump(), host),
            ENOENT);
  }
  return {};
}

} // namespace

Status Daemon::serve_migrate_check(migration::PeerConnection &conn, const migration::PeerMessage &m) {
  const json &h = m.header;
  BH_CHECK(
      check_incoming(h, options_.host_name, networks_, [this](const std::string &n) { return !!find(n); }));
  // A host being emptied takes nothing in (two hosts evacuating onto each other would trade).
  BH_CHECK(refuse_while_evacuating("taking in container " + h["name"].get<std::string>()));
  if (h.contains("idmap")) {
    auto want = idmap_from_json(h["idmap"]);
    if (!want)
      return fail("\"idmap\" must be {\"uid\": N, \"gid\": N, \"size\": N}", EINVAL);
    BH_CHECK(context(id_range_free(*want), fmt::format("{} cannot keep its id range on {}",
                                                       h["name"].get<std::string>(), options_.host_name)));
  }
  std::string tname = h.value("template", "");
  BH_CHECK(context(storage::validate_name("template", tname), "the migrating container's template"));
  bool present = false;
  if (templates_.get(tname)) {
    UniqueFd rootfs(
        ::open(templates_.rootfs_path(tname).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!rootfs)
      return failf_errno("opening {}", templates_.rootfs_path(tname));
    std::string here = BH_TRY(storage::tree_digest(rootfs.get(), nullptr));
    if (here != h.value("digest", ""))
      return fail(
          fmt::format("template \"{}\" on {} differs from the container's (digest {} there, {} on the "
                      "source): remove it there or give the source's template another name",
                      tname, options_.host_name, here, h.value("digest", "")),
          EINVAL);
    present = true;
  }
  return conn.send({{"ok", true}, {"template_present", present}, {"checksums", storage::stream_checksums()}});
}

Status Daemon::serve_migrate_receive(migration::PeerConnection &conn, const TrustedPeer &peer,
                                     const migration::PeerMessage &m) {
  const json &h = m.header;
  BH_CHECK(
      check_incoming(h, options_.host_name, networks_, [this](const std::string &n) { return !!find(n); }));
  std::string name = h["name"];
  BH_CHECK(refuse_while_evacuating("taking in container " + name));
  // Refused before anything is made or answered: a checksum this version does not know.
  auto sum = BH_TRY(context(checksum_named_by_sender(h), "migrate.receive"));
  // The source's --host-name, as its placement names it (an older source sends none: its trust name).
  const std::string source_host = h.value("source_host", peer.name);
  cluster_busy(name, true); // its placement still names the source: not to be fenced here
  struct Unbusy {
    Daemon *d;
    const std::string &name;
    ~Unbusy() { d->cluster_busy(name, false); }
  } unbusy{this, name};
  bool run = h.value("running", false);
  std::string memory_snapshot = h.value("memory_snapshot", "");
  if (!memory_snapshot.empty())
    BH_CHECK(storage::validate_name("snapshot", memory_snapshot));
  // A live transfer with pre-copy names its export's size later (migrate.export), after the freeze.
  const bool precopy = h.value("precopy", false);
  if (precopy && memory_snapshot.empty())
    return fail("a pre-copy transfer needs its \"memory_snapshot\"", EINVAL);
  std::optional<uint64_t> total;
  if (h.contains("bytes")) {
    if (!h["bytes"].is_number_unsigned())
      return fail("\"bytes\" must be a size", EINVAL);
    total = h["bytes"].get<uint64_t>();
  } else if (!precopy) {
    return fail("a migration request needs its size in \"bytes\"", EINVAL);
  }
  std::string id = random_id();
  FileGuard tmp{options_.root + "/migrate-in-" + id + ".bhx"};
  // The CRIU images of a live migration, until they move into the imported snapshot.
  // Pre-copy rounds go to memdir/pre-K (K = 1, 2, ...), each linked to the one before as CRIU
  // links them (pre-K/parent -> ../pre-(K-1)); the final images' parent is the last round.
  std::string memdir = options_.root + "/migrate-in-" + id + ".memory";
  DirGuard memguard;
  if (!memory_snapshot.empty()) {
    if (::mkdir(memdir.c_str(), 0700) < 0)
      return failf_errno("creating {}", memdir);
    memguard.path = memdir;
  }
  UniqueFd out(::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) {
    auto err = failf_errno("creating {}", tmp.path);
    tmp.path.clear(); // not ours to remove
    return err;
  }
  BH_CHECK(conn.send({{"ok", true}}));
  // The arrival, once a container exists here for it: a daemon killed meanwhile removes it at its
  // next start (finish_interrupted_migrations, led by the marker), since the source, which got no
  // answer, brings its own copy back; a failure here removes it (and a template it brought) now.
  FileGuard marker;
  std::string tname;
  bool had_template = true;
  struct Arrival {
    Daemon *d;
    const std::string &name, &tname;
    const bool &had_template;
    bool armed = false;
    ~Arrival() {
      if (!armed)
        return;
      (void)d->destroy(name, true);
      if (!had_template)
        (void)d->templates_.remove(tname);
    }
  } arrival{this, name, tname, had_template};
  auto begin_arrival = [&](const storage::ExportReader &r, const ContainerConfig &config) -> Status {
    if (find(name)) // made here while the bytes came
      return fail(fmt::format("container \"{}\" already exists on {}", name, options_.host_name), EEXIST);
    tname = r.manifest().value("template", json::object()).value("name", config.template_name);
    had_template = static_cast<bool>(templates_.get(tname));
    marker.path = options_.root + "/migrate-in-" + id + ".incoming";
    if (auto w = write_file_atomic(marker.path, name, 0600); !w) {
      marker.path.clear();
      return w;
    }
    return {};
  };
  // The disk pre-sync (live): a full export of the running container's base snapshot, imported as
  // soon as it is complete, while the source still runs; the final export is then incremental
  // against it and applies in place (apply_migration_delta).
  FileGuard basefile;
  UniqueFd base_out;
  std::optional<uint64_t> base_total;
  uint64_t base_got = 0;
  std::string base_snapshot;
  auto import_base = [&]() -> Status {
    if (::fsync(base_out.get()) < 0)
      return failf_errno("syncing {}", basefile.path);
    base_out.reset();
    auto reader = BH_TRY(storage::ExportReader::open(basefile.path));
    const json &man = reader.manifest();
    if (!man.contains("container") || !man["container"].is_object() || man.value("kind", "") != "full" ||
        !man.contains("snapshot") || !man["snapshot"].is_object())
      return fail("the disk pre-sync of " + name + " is no full export of a snapshot", EINVAL);
    auto config = BH_TRY(context(config_from_json(man["container"]), "the migrating container's record"));
    if (config.name != name)
      return fail(fmt::format("the transfer of {} carries container {}", name, config.name), EINVAL);
    base_snapshot = man["snapshot"].value("name", "");
    BH_CHECK(begin_arrival(reader, config));
    Operation bop(random_id(), "Receiving the disk of container " + name + " from " + peer.name,
                  "/1.0/containers/" + name);
    // The pre-sync is live only: the memory follows, so the container keeps its id range.
    BH_CHECK(import_full(reader, name, config, bop, true, true));
    arrival.armed = true;
    ::unlink(basefile.path.c_str());
    basefile.path.clear();
    return {};
  };
  uint64_t c_end_bytes = 0;
  int parent_round = 0;
  uint64_t got = 0, export_bytes = 0;
  bool in_memory = false, in_export = false;
  int round = 0;
  std::string want_sum;
  for (;;) {
    // An error here is a cut transfer: the handler's error goes back (if the peer still listens),
    // the file goes, nothing was imported.
    auto c = conn.receive(kPeerChunkBytes);
    if (!c)
      return fail(fmt::format("receiving {} from {} ({}): {}", name, peer.name, conn.peer_address(),
                              c.error().message),
                  c.error().code ? c.error().code : EIO);
    std::string op = c->header.value("op", "");
    if (op == "migrate.end") {
      want_sum = c->header.value(sum.algorithm(), "");
      c_end_bytes = c->header.value("bytes", uint64_t{0});
      parent_round = c->header.value("parent_round", 0);
      break;
    }
    if (op == "migrate.base" && precopy && !base_total && round == 0 && !in_export) {
      if (!c->header.contains("bytes") || !c->header["bytes"].is_number_unsigned() ||
          c->header["bytes"].get<uint64_t>() == 0)
        return fail("migrate.base needs its size in \"bytes\"", EPROTO);
      base_total = c->header["bytes"].get<uint64_t>();
      basefile.path = options_.root + "/migrate-in-" + id + ".base.bhx";
      base_out.reset(::open(basefile.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!base_out) {
        auto err = failf_errno("creating {}", basefile.path);
        basefile.path.clear();
        return err;
      }
      continue;
    }
    if (op == "migrate.basechunk" && base_total && base_out) {
      base_got += c->payload.size();
      if (base_got > *base_total)
        return fail(fmt::format("the disk pre-sync of {} sent more than its {} bytes", name, *base_total),
                    EPROTO);
      got += c->payload.size();
      sum.update(c->payload);
      BH_CHECK(write_all(base_out.get(), c->payload, basefile.path));
      if (base_got == *base_total)
        BH_CHECK(context(import_base(), "importing the disk pre-sync of " + name));
      continue;
    }
    if (op == "migrate.prefile" && precopy && !in_export && (!base_total || arrival.armed)) {
      int k = c->header.value("round", 0);
      if (k != round && k != round + 1)
        return fail(fmt::format("pre-copy round {} out of order in the transfer of {} (after round {})", k,
                                name, round),
                    EPROTO);
      if (k < 1 || k > kMaxPreCopyRoundsAccepted)
        return fail(fmt::format("pre-copy round {} of {}: at most {} rounds are taken", k, name,
                                kMaxPreCopyRoundsAccepted),
                    EPROTO);
      std::string dir = fmt::format("{}/pre-{}", memdir, k);
      if (k == round + 1) {
        if (::mkdir(dir.c_str(), 0700) < 0)
          return failf_errno("creating {}", dir);
        std::string link = fmt::format("../pre-{}", k - 1);
        if (k > 1 && ::symlink(link.c_str(), (dir + "/parent").c_str()) < 0)
          return failf_errno("linking {}/parent to {}", dir, link);
        round = k;
      }
      BH_CHECK(append_image(dir, c->header.value("file", ""), c->payload));
      got += c->payload.size();
      sum.update(c->payload);
      continue;
    }
    if (op == "migrate.export" && precopy && !total && !in_export) {
      if (!c->header.contains("bytes") || !c->header["bytes"].is_number_unsigned())
        return fail("migrate.export needs its size in \"bytes\"", EPROTO);
      total = c->header["bytes"].get<uint64_t>();
      continue;
    }
    if (op == "migrate.memfile" && !memory_snapshot.empty()) {
      BH_CHECK(append_image(memdir, c->header.value("file", ""), c->payload));
      in_memory = true;
      got += c->payload.size();
      sum.update(c->payload);
      continue;
    }
    if (op != "migrate.chunk" || in_memory || !total)
      return fail("unexpected \"" + op + "\" in the transfer of " + name, EPROTO);
    in_export = true;
    got += c->payload.size();
    export_bytes += c->payload.size();
    if (export_bytes > *total)
      return fail(fmt::format("the transfer of {} sent more than its {} bytes", name, *total), EPROTO);
    sum.update(c->payload);
    BH_CHECK(write_all(out.get(), c->payload, tmp.path));
  }
  std::string have_sum = sum.hex_digest();
  uint64_t want_bytes = c_end_bytes;
  if (!total)
    return fail("the transfer of " + name + " ended before its export", EPROTO);
  if (base_total && !arrival.armed)
    return fail("the transfer of " + name + " ended before its disk pre-sync", EPROTO);
  if (export_bytes != *total || got != want_bytes || have_sum != want_sum)
    return fail(fmt::format("the transfer of {} is damaged: {} of {} bytes, {} {} (the source sent {})", name,
                            got, want_bytes, sum.algorithm(), have_sum, want_sum.empty() ? "none" : want_sum),
                EIO);
  if (parent_round != 0 && (parent_round != round || !in_memory))
    return fail(fmt::format("the transfer of {} names pre-copy round {} as its images' parent, but {} came",
                            name, parent_round, round),
                EPROTO);
  if (parent_round != 0) {
    std::string link = fmt::format("pre-{}", parent_round);
    if (::symlink(link.c_str(), (memdir + "/parent").c_str()) < 0)
      return failf_errno("linking {}/parent to {}", memdir, link);
  }
  if (::fsync(out.get()) < 0)
    return failf_errno("syncing {}", tmp.path);
  out.reset();

  // How the target's part of the downtime splits, for the source's report.
  auto t_import = std::chrono::steady_clock::now();
  json timing = json::object();
  auto reader = BH_TRY(storage::ExportReader::open(tmp.path));
  const json &man = reader.manifest();
  const std::string want_kind = arrival.armed ? "incremental" : "full";
  if (!man.contains("container") || !man["container"].is_object() || man.value("kind", "") != want_kind)
    return fail(fmt::format("the transfer of {} is no {} export", name, want_kind), EINVAL);
  auto config = BH_TRY(context(config_from_json(man["container"]), "the migrating container's record"));
  if (config.name != name)
    return fail(fmt::format("the transfer of {} carries container {}", name, config.name), EINVAL);
  Operation op(random_id(), "Receiving container " + name + " from " + peer.name, "/1.0/containers/" + name);
  if (arrival.armed) {
    // Downtime: only what changed since the pre-sync, applied in place.
    if (man.value("base_snapshot", json::object()).value("name", "") != base_snapshot)
      return fail(
          fmt::format("the final export of {} is not based on its disk pre-sync {}", name, base_snapshot),
          EPROTO);
    BH_CHECK(apply_migration_delta(reader, name, op));
  } else {
    BH_CHECK(begin_arrival(reader, config));
    BH_CHECK(import_full(reader, name, config, op, true, in_memory));
  }
  arrival.armed = false; // from here each failure below undoes the arrival itself
  // From here this host owns it in the cluster; handed back below if it cannot run here.
  if (auto r = take_placement(name, source_host); !r) {
    (void)destroy(name, true);
    return fail(fmt::format("taking {} in on {}: {}", name, options_.host_name, r.error().message),
                r.error().code);
  }
  timing["import_ms"] = ms_since(t_import);
  auto t_run = std::chrono::steady_clock::now();
  if (!memory_snapshot.empty()) {
    // Resumes from the images: the imported snapshot holds the same files as the upper layer (or,
    // after a disk pre-sync, the upper layer itself does: no snapshot travelled).
    auto resumed = [&]() -> Status {
      if (!base_snapshot.empty()) {
        (void)remove_snapshot(name, base_snapshot);
        auto e = BH_TRY(get(name));
        std::unique_lock lock(e->mu);
        return start_locked(*e, lock, memdir);
      }
      if (!snapshots_.exists(name, memory_snapshot))
        return fail("the transfer of " + name + " did not bring snapshot " + memory_snapshot, EPROTO);
      std::string images = snapshots_.memory_path(name, memory_snapshot);
      if (::rename(memdir.c_str(), images.c_str()) < 0)
        return failf_errno("moving {} to {}", memdir, images);
      auto e = BH_TRY(get(name));
      std::unique_lock lock(e->mu);
      return start_locked(*e, lock, images);
    }();
    if (!resumed) {
      give_placement(name, source_host);
      (void)destroy(name, true);
      if (!had_template)
        (void)templates_.remove(tname);
      return fail(fmt::format("restoring {} on {} from its memory images: {}", name, options_.host_name,
                              resumed.error().message),
                  resumed.error().code);
    }
    (void)remove_snapshot(name, memory_snapshot);
  } else if (run) {
    if (auto s = start(name); !s) {
      give_placement(name, source_host);
      (void)destroy(name, true);
      if (!had_template)
        (void)templates_.remove(tname);
      return fail(fmt::format("starting {} on {} after its transfer: {}", name, options_.host_name,
                              s.error().message),
                  s.error().code);
    }
  }
  timing[memory_snapshot.empty() ? "start_ms" : "restore_ms"] = ms_since(t_run);
  if (!memory_snapshot.empty())
    if (auto criu = migration::log_duration_ms(records_.paths(name).bundle + "/criu-restore/restore.log"))
      timing["criu_restore_ms"] = *criu;
  events_.publish("container-migrated-in", name, {{"from", peer.name}});
  std::string state = "stopped";
  if (auto e = find(name)) {
    std::lock_guard lock(e->mu);
    state = e->rec.status.state;
  }
  // The arrival is complete before the answer goes: were the daemon killed between the two, the
  // source would bring its copy back too (docs/migration.md, "Failures": the one window in which
  // both hosts run it).
  ::unlink(marker.path.c_str());
  marker.path.clear();
  return conn.send({{"ok", true}, {"host", options_.host_name}, {"state", state}, {"timing", timing}});
}

} // namespace bulkhead::daemon
