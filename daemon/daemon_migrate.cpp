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
// |      |                                                | {"ok":true,"template_present":B}     |
// | 3    | stops the container (cold; downtime starts);   | -                                    |
// |      | exports it to <root>/migrate-ID.bhx (with the  |                                      |
// |      | template when the target lacks it)             |                                      |
// | 4    | {"op":"migrate.receive","name","bytes",        | checks again, makes                  |
// |      |  "running"}                                    | <root>/migrate-in-ID.bhx -> {"ok"}   |
// | 5    | {"op":"migrate.chunk"} + <= 4 MiB payload, ... | appends, hashes (SHA-256)            |
// | 6    | {"op":"migrate.end","bytes","sha256"}          | checks size and hash, imports (same  |
// |      |                                                | name, addresses, MACs, limits),      |
// |      |                                                | starts it when it ran, removes the   |
// |      |                                                | file -> {"ok":true,"state"}          |
// | 7    | destroys its copy; removes the file            | -                                    |
// A failure at 1-6 (either side, or the connection cut) makes the target remove whatever it made
// and the source start its copy again when it was running; the temporary files always go.
//
// Live (--live) differs in steps 3, 5 and 6: the source checkpoints the container with --stop
// into a snapshot migrate-MS (daemon_checkpoint.cpp; downtime starts at the freeze) and exports
// that snapshot; after the export's chunks it sends each CRIU image of SNAP/memory as
// {"op":"migrate.memfile","file"} + <= 4 MiB payloads (hashed into the same SHA-256); the target
// imports the export (which brings the snapshot along), puts the images into the snapshot's
// memory/ and starts the container from them (CRIU restore: it runs on with its memory), then
// drops the snapshot. On a failure the source restores its own checkpoint, so the container runs
// on here with its memory, and drops the snapshot.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <fmt/core.h>
#include <openssl/evp.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/request_fields.hpp"
#include "storage/backup_archive.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr size_t kChunkBytes = size_t{4} << 20;
constexpr int kConnectTimeoutS = 10;
// A read on the channel waits this long at most: the target's import and start of a large
// container under a slow machine take minutes, and the answer comes only after them.
constexpr int kTransferTimeoutS = 900;
constexpr int kStopTimeoutS = 30;

class Sha256 {
public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256 &) = delete;
  Sha256 &operator=(const Sha256 &) = delete;
  void update(std::string_view d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    std::string out;
    for (unsigned i = 0; i < n; ++i)
      out += fmt::format("{:02x}", md[i]);
    return out;
  }

private:
  EVP_MD_CTX *ctx_;
};

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

int64_t ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

// --- source ------------------------------------------------------------------------------------

Result<std::shared_ptr<Operation>> Daemon::migrate(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"remote", "mode"}, "migrate"));
  std::string remote = BH_TRY(string_field(req, "remote", true));
  std::string mode = BH_TRY(string_field(req, "mode", false));
  if (!mode.empty() && mode != "cold" && mode != "live")
    return fail("\"mode\" must be \"cold\" or \"live\" (got \"" + mode + "\")", EINVAL);
  if (remote.empty() || !trust_->remote(remote))
    return fail("no remote named \"" + remote +
                    "\" (bulkheadctl remote list shows them, remote add pairs one)",
                ENOENT);
  auto e = BH_TRY(get(name));
  {
    std::lock_guard lock(e->mu);
    const auto &state = e->rec.status.state;
    if (state == "starting" || state == "stopping")
      return fail(fmt::format("container \"{}\" is {}; try again when it is running or stopped", name, state),
                  EBUSY);
    bool running = e->watch_fd && state == "running";
    if (mode.empty())
      mode = running ? "live" : "cold";
    if (mode == "live" && !running)
      return fail(fmt::format("container \"{}\" is {}: live migration moves a running container's memory "
                              "(--cold moves a stopped one)",
                              name, state),
                  EINVAL);
  }
  return operations_.start(
      "Migrating container " + name + " to " + remote, "/1.0/containers/" + name,
      [this, name, remote, mode](Operation &op) { return migrate_work(name, remote, mode, op); });
}

Result<json> Daemon::migrate_check_request(const std::string &name, const ContainerConfig &config,
                                           Operation &op, std::map<std::string, std::string> *digests) {
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
  return json{{"op", "migrate.check"},
              {"name", name},
              {"template", config.template_name},
              {"digest", digest},
              {"networks", networks}};
}

Status Daemon::migrate_work(const std::string &name, const std::string &remote_name, const std::string &mode,
                            Operation &op) {
  auto remote = BH_TRY(trust_->remote(remote_name));
  const std::string where = fmt::format("remote {} ({})", remote.name, remote.address);
  auto e = BH_TRY(get(name));
  ContainerConfig config;
  bool was_running = false;
  {
    std::lock_guard lock(e->mu);
    config = e->rec.config;
    was_running = e->watch_fd && e->rec.status.state == "running";
  }

  op.set_progress("connecting", 0, 0);
  auto conn = connect_remote(remote, *identity_, kConnectTimeoutS);
  if (!conn)
    return fail(fmt::format("migrating {}: cannot reach {}: {}", name, where, conn.error().message),
                conn.error().code);
  conn->set_timeout(kTransferTimeoutS);

  // Step 2: ask before anything changes here.
  json check_req = BH_TRY(migrate_check_request(name, config, op, nullptr));
  auto check = conn->request(check_req);
  if (!check)
    return tl::unexpected(with_context(from_remote(check.error(), remote.address),
                                       fmt::format("migrating {} to {}", name, where)));
  bool template_present = check->header.value("template_present", false);

  // Step 3: from here on, a failure brings the source copy back as it was.
  const bool live = mode == "live";
  const std::string snap = live ? fmt::format("migrate-{}", now_unix_ms()) : std::string();
  auto t_down = std::chrono::steady_clock::now();
  if (live) {
    op.set_progress("checkpointing", 0, 0);
    BH_TRY(finish(checkpoint(name, {{"snapshot", snap}, {"stop", true}}),
                  "migrating " + name + ": checkpointing it"));
  } else if (was_running) {
    op.set_progress("stopping", 0, 0);
    BH_CHECK(context(stop(name, kStopTimeoutS), "migrating " + name + ": stopping it"));
  }
  auto restore_source = [&](Error err) -> Status {
    if (live) {
      // Back running here with its memory, from the checkpoint the migration made.
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
  op.set_progress("exporting", 0, 0);
  json exreq = {{"file", tmp.path}, {"with_template", !template_present}};
  if (live)
    exreq["snapshot"] = snap;
  if (auto x = finish(export_container(name, exreq), "migrating " + name + ": exporting it to " + tmp.path);
      !x)
    return restore_source(x.error());
  UniqueFd file(::open(tmp.path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!file || ::fstat(file.get(), &st) < 0)
    return restore_source(Error{errno, "migrating " + name + ": opening its export " + tmp.path});
  uint64_t total = static_cast<uint64_t>(st.st_size);

  // Steps 4-6.
  auto send_all = [&]() -> Status {
    json head = {{"op", "migrate.receive"}, {"name", name}, {"bytes", total}, {"running", was_running}};
    if (live)
      head["memory_snapshot"] = snap;
    BH_CHECK(conn->request(head));
    Sha256 sha;
    std::string buf(kChunkBytes, '\0');
    uint64_t sent = 0;
    while (sent < total) {
      if (op.cancelled())
        return fail("cancelled", ECANCELED);
      ssize_t n = ::read(file.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return failf_errno("reading {}", tmp.path);
      if (n == 0)
        return fail(tmp.path + " ended before its size", EIO);
      std::string_view chunk(buf.data(), static_cast<size_t>(n));
      sha.update(chunk);
      BH_CHECK(conn->send({{"op", "migrate.chunk"}}, chunk));
      sent += static_cast<uint64_t>(n);
      op.set_progress("sending", sent, total);
    }
    if (live) {
      // The CRIU images: a flat directory of files.
      std::string dir = snapshots_.memory_path(name, snap);
      std::error_code ec;
      for (const auto &f : std::filesystem::directory_iterator(dir, ec)) {
        if (!f.is_regular_file())
          continue;
        std::string fname = f.path().filename().string();
        UniqueFd in(::open(f.path().c_str(), O_RDONLY | O_CLOEXEC));
        if (!in)
          return failf_errno("opening {}", f.path().string());
        bool first = true;
        for (;;) {
          ssize_t n = ::read(in.get(), buf.data(), buf.size());
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return failf_errno("reading {}", f.path().string());
          if (n == 0 && !first)
            break;
          std::string_view chunk(buf.data(), static_cast<size_t>(n));
          sha.update(chunk);
          BH_CHECK(conn->send({{"op", "migrate.memfile"}, {"file", fname}}, chunk));
          sent += static_cast<uint64_t>(n);
          first = false;
          if (n == 0)
            break;
        }
      }
      if (ec)
        return fail(fmt::format("listing {}: {}", dir, ec.message()), ec.value());
    }
    op.set_progress(was_running ? "importing and starting on the remote" : "importing on the remote", sent,
                    sent);
    BH_CHECK(conn->request({{"op", "migrate.end"}, {"bytes", sent}, {"sha256", sha.hex()}}));
    total = sent;
    return {};
  };
  if (auto s = send_all(); !s)
    return restore_source(
        with_context(from_remote(s.error(), remote.address), fmt::format("migrating {} to {}", name, where)));
  int64_t downtime_ms = was_running ? ms_since(t_down) : 0;

  // Step 7: the remote runs it; this copy goes.
  op.set_progress("removing the source copy", 0, 0);
  if (auto d = destroy(name, true); !d)
    return fail(
        fmt::format("{} now runs on {}, but removing it here failed: {}", name, where, d.error().text()),
        d.error().code);
  op.set_metadata({{"name", name},
                   {"remote", remote.name},
                   {"address", remote.address},
                   {"mode", mode},
                   {"bytes", total},
                   {"template_sent", !template_present},
                   {"was_running", was_running},
                   {"downtime_ms", downtime_ms}});
  events_.publish("container-migrated", name, {{"remote", remote.name}, {"mode", mode}});
  return {};
}

// --- target ------------------------------------------------------------------------------------

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
  return conn.send({{"ok", true}, {"template_present", present}});
}

Status Daemon::serve_migrate_receive(migration::PeerConnection &conn, const TrustedPeer &peer,
                                     const migration::PeerMessage &m) {
  const json &h = m.header;
  BH_CHECK(
      check_incoming(h, options_.host_name, networks_, [this](const std::string &n) { return !!find(n); }));
  std::string name = h["name"];
  BH_CHECK(refuse_while_evacuating("taking in container " + name));
  if (!h.contains("bytes") || !h["bytes"].is_number_unsigned())
    return fail("a migration request needs its size in \"bytes\"", EINVAL);
  uint64_t total = h["bytes"];
  bool run = h.value("running", false);
  std::string memory_snapshot = h.value("memory_snapshot", "");
  if (!memory_snapshot.empty())
    BH_CHECK(storage::validate_name("snapshot", memory_snapshot));
  std::string id = random_id();
  FileGuard tmp{options_.root + "/migrate-in-" + id + ".bhx"};
  // The CRIU images of a live migration, until they move into the imported snapshot.
  std::string memdir = options_.root + "/migrate-in-" + id + ".memory";
  struct DirGuard {
    std::string path;
    ~DirGuard() {
      if (!path.empty())
        (void)remove_tree(path);
    }
  } memguard;
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
  Sha256 sha;
  uint64_t c_end_bytes = 0;
  uint64_t got = 0, export_bytes = 0;
  bool in_memory = false;
  std::string want_sha;
  for (;;) {
    // An error here is a cut transfer: the handler's error goes back (if the peer still listens),
    // the file goes, nothing was imported.
    auto c = conn.receive(kChunkBytes);
    if (!c)
      return fail(fmt::format("receiving {} from {} ({}): {}", name, peer.name, conn.peer_address(),
                              c.error().message),
                  c.error().code ? c.error().code : EIO);
    std::string op = c->header.value("op", "");
    if (op == "migrate.end") {
      want_sha = c->header.value("sha256", "");
      c_end_bytes = c->header.value("bytes", uint64_t{0});
      break;
    }
    if (op == "migrate.memfile" && !memory_snapshot.empty()) {
      std::string f = c->header.value("file", "");
      if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos)
        return fail("a bad memory image name \"" + f + "\" in the transfer of " + name, EPROTO);
      in_memory = true;
      got += c->payload.size();
      sha.update(c->payload);
      std::string path = memdir + "/" + f;
      UniqueFd mf(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!mf)
        return failf_errno("creating {}", path);
      BH_CHECK(write_all(mf.get(), c->payload, path));
      continue;
    }
    if (op != "migrate.chunk" || in_memory)
      return fail("unexpected \"" + op + "\" in the transfer of " + name, EPROTO);
    got += c->payload.size();
    export_bytes += c->payload.size();
    if (export_bytes > total)
      return fail(fmt::format("the transfer of {} sent more than its {} bytes", name, total), EPROTO);
    sha.update(c->payload);
    BH_CHECK(write_all(out.get(), c->payload, tmp.path));
  }
  std::string have_sha = sha.hex();
  uint64_t want_bytes = c_end_bytes;
  if (export_bytes != total || got != want_bytes || have_sha != want_sha)
    return fail(fmt::format("the transfer of {} is damaged: {} of {} bytes, SHA-256 {} (the source sent {})",
                            name, got, want_bytes, have_sha, want_sha),
                EIO);
  if (::fsync(out.get()) < 0)
    return failf_errno("syncing {}", tmp.path);
  out.reset();

  auto reader = BH_TRY(storage::ExportReader::open(tmp.path));
  const json &man = reader.manifest();
  if (!man.contains("container") || !man["container"].is_object() || man.value("kind", "") != "full")
    return fail("the transfer of " + name + " is no full export", EINVAL);
  auto config = BH_TRY(context(config_from_json(man["container"]), "the migrating container's record"));
  if (config.name != name)
    return fail(fmt::format("the transfer of {} carries container {}", name, config.name), EINVAL);
  if (find(name)) // made here while the bytes came
    return fail(fmt::format("container \"{}\" already exists on {}", name, options_.host_name), EEXIST);
  std::string tname = man.value("template", json::object()).value("name", config.template_name);
  bool had_template = static_cast<bool>(templates_.get(tname));
  Operation op(random_id(), "Receiving container " + name + " from " + peer.name, "/1.0/containers/" + name);
  BH_CHECK(import_full(reader, name, config, op, true));
  if (!memory_snapshot.empty()) {
    // Resumes from the images: the imported snapshot holds the same files as the upper layer.
    auto resumed = [&]() -> Status {
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
      (void)destroy(name, true);
      if (!had_template)
        (void)templates_.remove(tname);
      return fail(fmt::format("starting {} on {} after its transfer: {}", name, options_.host_name,
                              s.error().message),
                  s.error().code);
    }
  }
  events_.publish("container-migrated-in", name, {{"from", peer.name}});
  std::string state = "stopped";
  if (auto e = find(name)) {
    std::lock_guard lock(e->mu);
    state = e->rec.status.state;
  }
  return conn.send({{"ok", true}, {"host", options_.host_name}, {"state", state}});
}

} // namespace bulkhead::daemon
