// Continuous replication, the standby side (issue 14, docs/replication.md): the replicas this host
// holds for containers of other hosts, and their activation (`bulkheadctl replica activate NAME`,
// and the failover's Daemon::activate_replica). The source side is daemon/replicator.cpp.
//
// Layout: <root>/replicas/NAME/
//   current             symlink to the one complete set (set-ID); replaced by a rename, so it
//                       always names a complete, verified set (or does not exist yet)
//   set-ID/export.bhx   the container: record and upper layer (a full export, as `export` makes)
//   set-ID/images/img-K CRIU images (memory mode, a running container); img-K/parent -> ../img-(K-1)
//                       for the pages unchanged since the set before (hard links of its files)
//   set-ID/meta.json    {name, source, source_host, mode, state, set, images, bytes, checksum,
//                       received_unix_ms, captured_unix_ms (the source's clock at its freeze:
//                       reported, never decided on)}
//   .staging-ID         a set arriving; renamed to set-ID when complete and verified, removed when
//                       the stream breaks, swept at start
//
// The peer messages (source -> standby); a connection carries one round after another:
// | message                                           | standby                                   |
// |---------------------------------------------------|-------------------------------------------|
// | {"op":"replica.check","name","template",          | refuses a name that is a container here,  |
// |  "networks","mode"}                               | a missing network, a template that differs |
// |                                                   | -> {"ok","template_present","set","chain",|
// |                                                   | "checksums" (the algorithms it knows)}    |
// | {"op":"replica.begin","name","set","parent_set",  | refuses as check does, or a parent_set    |
// |  "images","parent_images","mode","state",         | that is not its current set; makes the    |
// |  "source_host","captured_unix_ms","checksum"}     | staging dir (hard links of the parent     |
// |                                                   | chain's images; the chain flattened ahead |
// |                                                   | taken in when ready: replica_flattening.  |
// |                                                   | cpp; a chain of kMaxChain waits for it or |
// |                                                   | is flattened now) -> {"ok"}               |
// | {"op":"replica.file","part":"export"} + payload   | appended to export.bhx, hashed            |
// | {"op":"replica.file","part":"image","file"} + pl. | appended to images/<images>/FILE, hashed  |
// | {"op":"replica.commit","bytes",CHECKSUM: hex}     | checks size, the checksum named in begin  |
// |                                                   | (absent: "sha256", an older source), the  |
// |                                                   | export's manifest, the images' inventory; |
// |                                                   | imports the template when the set carries |
// |                                                   | it (refuses one that lacks a template     |
// |                                                   | this host no longer has: a source that    |
// |                                                   | skipped the check); renames staging to    |
// |                                                   | set-ID, points current at it -> {"ok",    |
// |                                                   | "set","chain","flatten_ms"},              |
// |                                                   | then removes the old set (the source's    |
// |                                                   | round is over) and, with a chain of       |
// |                                                   | kFlattenAheadChain, flattens it ahead     |
// | {"op":"replica.drop","name"}                      | removes replicas/NAME -> {"ok"}           |
// Any other message, a broken stream or a failed check removes the staging dir: the previous
// complete set stays current. An activation cuts a set still arriving (shutdown of its socket).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/replication_state.hpp"
#include "migration/criu_image_flatten.hpp"
#include "storage/backup_archive.hpp"
#include "storage/stream_checksum.hpp"
#include "storage/tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxPayload = uint64_t{4} << 20;
constexpr int kStreamTimeoutS = 120;

struct DirGuard {
  std::string path;
  ~DirGuard() {
    if (!path.empty())
      (void)remove_tree(path);
  }
};

// "img-K", K >= 1: an image directory's name is a path component.
bool valid_images_name(const std::string &s) {
  if (s.size() < 5 || s.rfind("img-", 0) != 0 || s.size() > 14)
    return false;
  return s.find_first_not_of("0123456789", 4) == std::string::npos && s[4] != '0';
}

Status append_to(const std::string &path, std::string_view data) {
  UniqueFd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!f)
    return failf_errno("creating {}", path);
  return write_all(f.get(), data, path);
}

uint64_t tree_bytes(const std::string &dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec))
      n += it->file_size(ec);
  return n;
}

// The set `current` names, as a real path; empty when there is none.
std::string current_set(const std::string &dir) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(dir + "/current", ec);
  if (ec || target.empty() || target.string().find('/') != std::string::npos)
    return {};
  return dir + "/" + target.string();
}

} // namespace

Status Daemon::claim_replica(const std::string &name, const std::string &what,
                             std::chrono::milliseconds wait) {
  std::unique_lock lock(replica_mu_);
  if (wait.count() > 0)
    replica_cv_.wait_for(lock, wait, [&] { return !replica_busy_.count(name); });
  if (!replica_busy_.insert(name).second)
    return fail(fmt::format("{}: the replica of {} on {} is busy (a set arriving, an activation or a drop); "
                            "try again",
                            what, name, options_.host_name),
                EBUSY);
  return {};
}

void Daemon::release_replica(const std::string &name) {
  {
    std::lock_guard lock(replica_mu_);
    replica_busy_.erase(name);
  }
  replica_cv_.notify_all();
}

namespace {
struct ReplicaClaim {
  std::function<void()> release;
  ~ReplicaClaim() {
    if (release)
      release();
  }
};
} // namespace

void Daemon::register_replica_handlers() {
  // A self-fencing host asks whether this one reaches etcd now (daemon/self_fence.hpp): one read,
  // made for the question (a lease refreshed a moment ago says nothing of etcd since).
  peers_->on(
      "cluster.etcd",
      [this](migration::PeerConnection &c, const TrustedPeer &, const migration::PeerMessage &) -> Status {
        const ClusterMember *m = lease_source_;
        bool reachable = m && m->client().get(kHostsPrefix + m->host()).has_value();
        return c.send({{"ok", true}, {"etcd_reachable", reachable}});
      });
  peers_->on("replica.check", [this](migration::PeerConnection &c, const TrustedPeer &,
                                     const migration::PeerMessage &m) { return serve_replica_check(c, m); });
  peers_->on("replica.begin",
             [this](migration::PeerConnection &c, const TrustedPeer &p, const migration::PeerMessage &m) {
               return serve_replica_begin(c, p, m);
             });
  peers_->on("replica.drop", [this](migration::PeerConnection &c, const TrustedPeer &,
                                    const migration::PeerMessage &m) { return serve_replica_drop(c, m); });
}

// At start: the sets that never completed (a stream cut by this daemon's death) and sets no
// longer current go.
void Daemon::sweep_replicas() {
  std::string root = options_.root + "/replicas";
  if (::mkdir(root.c_str(), 0700) < 0 && errno != EEXIST) {
    fmt::print(stderr, "bulkheadd: warning: creating {}: {}\n", root, std::strerror(errno));
    return;
  }
  std::error_code ec;
  for (const auto &d : std::filesystem::directory_iterator(root, ec)) {
    std::string cur = current_set(d.path().string());
    std::error_code ec2;
    for (const auto &f : std::filesystem::directory_iterator(d.path(), ec2)) {
      std::string fname = f.path().filename().string();
      if (fname == "current" || f.path().string() == cur)
        continue;
      fmt::print(stderr, "bulkheadd: removing {} (an incomplete or replaced replica set)\n",
                 f.path().string());
      (void)remove_tree(f.path().string());
    }
    if (cur.empty())
      (void)remove_tree(d.path().string());
  }
}

namespace {

// What check and begin both refuse.
Status check_replica_request(const json &h, const std::string &host, Networks &networks,
                             const std::function<bool(const std::string &)> &exists) {
  if (!h.contains("name") || !h["name"].is_string())
    return fail("a replica request needs a container \"name\"", EINVAL);
  std::string name = h["name"];
  BH_CHECK(storage::validate_name("container", name));
  if (exists(name))
    return fail(
        fmt::format("container \"{}\" exists on {}: a replica of it cannot be kept there", name, host),
        EEXIST);
  std::string mode = h.value("mode", "");
  if (mode != "memory" && mode != "disk")
    return fail("a replica's \"mode\" is \"memory\" or \"disk\" (got \"" + mode + "\")", EINVAL);
  if (h.contains("networks")) {
    if (!h["networks"].is_array())
      return fail("\"networks\" must be a list of names", EINVAL);
    for (const auto &n : h["networks"])
      if (!n.is_string() || !networks.info(n.get<std::string>()))
        return fail(fmt::format("container {} uses network \"{}\", which does not exist on {} (create it "
                                "there with the same name first)",
                                name, n.is_string() ? n.get<std::string>() : n.dump(), host),
                    ENOENT);
  }
  return {};
}

} // namespace

Status Daemon::serve_replica_check(migration::PeerConnection &conn, const migration::PeerMessage &m) {
  const json &h = m.header;
  BH_CHECK(check_replica_request(h, options_.host_name, networks_,
                                 [this](const std::string &n) { return !!find(n); }));
  std::string name = h["name"];
  std::string tname = h.value("template", "");
  BH_CHECK(context(storage::validate_name("template", tname), "the protected container's template"));
  std::string cur = current_set(replica_dir(name));
  int chain = 0;
  std::error_code ec;
  if (!cur.empty())
    for (const auto &d : std::filesystem::directory_iterator(cur + "/images", ec))
      chain += d.is_directory(ec) ? 1 : 0;
  std::string set;
  if (!cur.empty())
    set = cur.substr(cur.rfind("/set-") + 5);
  // The template travels inside the first set when it is missing here; its digest is checked when
  // that set is imported (import_full), so a different template of the same name is refused then.
  return conn.send({{"ok", true},
                    {"template_present", static_cast<bool>(templates_.get(tname))},
                    {"set", set},
                    {"chain", chain},
                    {"checksums", storage::stream_checksums()}});
}

Status Daemon::serve_replica_begin(migration::PeerConnection &conn, const TrustedPeer &peer,
                                   const migration::PeerMessage &m) {
  const json &h = m.header;
  BH_CHECK(check_replica_request(h, options_.host_name, networks_,
                                 [this](const std::string &n) { return !!find(n); }));
  std::string name = h["name"];
  std::string set = h.value("set", "");
  BH_CHECK(context(storage::validate_name("replica set", set), "replica.begin"));
  std::string images = h.value("images", ""), parent_images = h.value("parent_images", "");
  std::string parent_set = h.value("parent_set", "");
  std::string state = h.value("state", "");
  if (state != "running" && state != "stopped")
    return fail("a replica's \"state\" is \"running\" or \"stopped\" (got \"" + state + "\")", EINVAL);
  if (!images.empty() && !valid_images_name(images))
    return fail("a bad image directory name \"" + images + "\" in replica.begin", EPROTO);
  if (!parent_images.empty() && (!valid_images_name(parent_images) || images.empty()))
    return fail("a bad parent image directory \"" + parent_images + "\" in replica.begin", EPROTO);
  auto sum = BH_TRY(context(checksum_named_by_sender(h), "replica.begin"));
  BH_CHECK(claim_replica(name, "receiving a replica set"));
  ReplicaClaim claim{[this, name] { release_replica(name); }};
  // An activation may cut this set short (its socket shut down): unregistered before the
  // connection, and so its descriptor, can go away.
  {
    std::lock_guard lock(replica_mu_);
    replica_receiving_[name] = conn.fd();
  }
  ReplicaClaim receiving{[this, name] {
    std::lock_guard lock(replica_mu_);
    replica_receiving_.erase(name);
  }};
  const std::string dir = replica_dir(name);
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir);
  const std::string cur = current_set(dir);
  if (!parent_images.empty()) {
    if (cur.empty() || cur != dir + "/set-" + parent_set ||
        ::access((cur + "/images/" + parent_images + "/inventory.img").c_str(), F_OK) != 0)
      return fail(fmt::format("replica of {}: the set {} with images {} is not the current set here; send a "
                              "full set",
                              name, parent_set, parent_images),
                  ESTALE);
  }
  DirGuard staging{dir + "/.staging-" + set};
  (void)remove_tree(staging.path);
  if (::mkdir(staging.path.c_str(), 0700) < 0) {
    auto err = failf_errno("creating {}", staging.path);
    staging.path.clear();
    return err;
  }
  std::string imgroot = staging.path + "/images";
  // The new set's chain (image directories) as this host holds it, and the time its flattening
  // took (the commit's answer tells the source both).
  int chain = images.empty() ? 0 : 1;
  int64_t flatten_ms = 0;
  bool adopted_ahead = false; // this set holds the directory flattened in the background
  if (!images.empty()) {
    if (::mkdir(imgroot.c_str(), 0700) < 0)
      return failf_errno("creating {}", imgroot);
    // The parent chain: hard links of the current set's image files (they never change once
    // written), and each directory's parent link as it was.
    UniqueFd imgfd = BH_TRY(open_directory(imgroot));
    if (!parent_images.empty()) {
      UniqueFd from = BH_TRY(open_directory(cur + "/images"));
      BH_CHECK(migration::link_image_dirs(from.get(), imgfd.get(), cur + "/images"));
    }
    // A long chain becomes short again here, in the staging copy (the current set is only read):
    // with the flat directory made ahead in the background when it is ready
    // (daemon/replica_flattening.cpp), or by flattening it now when it reached kMaxChain without
    // one. The source's next dump goes on against the same parent, and no full set is ever needed
    // to cut the chain (migration/criu_image_flatten.hpp says why).
    if (!parent_images.empty()) {
      int length = BH_TRY(migration::image_chain_length(imgfd.get(), parent_images));
      int64_t waited_ms = 0;
      if (BH_TRY(adopt_flattened_ahead(name, imgfd.get(), parent_images, length, &waited_ms))) {
        adopted_ahead = true;
        flatten_ms = waited_ms; // the begin's own share of it (0 when it was ready)
        const int before = length;
        length = BH_TRY(migration::image_chain_length(imgfd.get(), parent_images));
        fmt::print(stderr,
                   "bulkheadd: replica {}: took the chain flattened ahead (waited {} ms): {} image "
                   "directories instead of {}\n",
                   name, waited_ms, length, before);
      }
      if (length >= replication::kMaxChain) {
        const int64_t t0 = replication::steady_ms();
        if (auto f = migration::flatten_image_chain(imgfd.get(), parent_images); !f) {
          // The set still works with its chain; the chain answered at commit (longer than
          // kMaxChain) makes the source cut it with a full set, as before flattening existed.
          fmt::print(stderr, "bulkheadd: replica {}: the image chain stays as it is: {}\n", name,
                     f.error().text());
        } else {
          BH_TRY(migration::prune_image_dirs(imgfd.get(), parent_images));
          flatten_ms = replication::steady_ms() - t0;
          fmt::print(stderr,
                     "bulkheadd: replica {}: flattened a chain of {} image directories into {} in {} ms\n",
                     name, length, parent_images, flatten_ms);
          length = 1;
        }
      }
      chain = length + 1;
    }
    std::string mine = imgroot + "/" + images;
    if (::mkdir(mine.c_str(), 0700) < 0)
      return failf_errno("creating {} (an image directory of that name is in the parent chain)", mine);
    if (!parent_images.empty() && ::symlink(("../" + parent_images).c_str(), (mine + "/parent").c_str()) < 0)
      return failf_errno("linking {}/parent", mine);
  }
  BH_CHECK(conn.send({{"ok", true}}));
  conn.set_timeout(kStreamTimeoutS);

  const std::string export_path = staging.path + "/export.bhx";
  uint64_t got = 0;
  json commit;
  for (;;) {
    auto c = conn.receive(kMaxPayload);
    if (!c)
      return fail(fmt::format("receiving a replica set of {} from {} ({}): {}; the previous set stays", name,
                              peer.name, conn.peer_address(), c.error().message),
                  c.error().code ? c.error().code : EIO);
    std::string op = c->header.value("op", "");
    if (op == "replica.commit") {
      commit = c->header;
      break;
    }
    if (op != "replica.file")
      return fail("unexpected \"" + op + "\" in a replica set of " + name, EPROTO);
    std::string part = c->header.value("part", "");
    if (part == "export") {
      BH_CHECK(append_to(export_path, c->payload));
    } else if (part == "image" && !images.empty()) {
      std::string file = c->header.value("file", "");
      if (file.empty() || file == "." || file == ".." || file == "parent" ||
          file.find('/') != std::string::npos)
        return fail("a bad image file name \"" + file + "\" in a replica set of " + name, EPROTO);
      BH_CHECK(append_to(imgroot + "/" + images + "/" + file, c->payload));
    } else {
      return fail("unexpected part \"" + part + "\" in a replica set of " + name, EPROTO);
    }
    sum.update(c->payload.data(), c->payload.size());
    got += c->payload.size();
  }
  const std::string have = sum.hex_digest(), want = commit.value(sum.algorithm(), std::string());
  if (got != commit.value("bytes", uint64_t{0}) || have != want)
    return fail(fmt::format("the replica set of {} is damaged: {} of {} bytes, {} {} (the source sent {}); "
                            "the previous set stays",
                            name, got, commit.value("bytes", uint64_t{0}), sum.algorithm(), have,
                            want.empty() ? "none" : want),
                EIO);
  if (!images.empty() && ::access((imgroot + "/" + images + "/inventory.img").c_str(), F_OK) != 0)
    return fail(fmt::format("the replica set of {} has no CRIU inventory in {}", name, images), EPROTO);
  auto reader = BH_TRY(storage::ExportReader::open(export_path));
  const json &man = reader.manifest();
  if (!man.contains("container") || !man["container"].is_object() || man.value("kind", "") != "full")
    return fail("the replica set of " + name + " carries no full export", EPROTO);
  auto config = BH_TRY(context(config_from_json(man["container"]), "the replica's container record"));
  if (config.name != name)
    return fail(fmt::format("the replica set of {} carries container {}", name, config.name), EPROTO);
  // The template comes once, in the first set: it is taken in now, so later sets need not carry it.
  json tref = man.value("template", json::object());
  std::string tname = tref.value("name", config.template_name);
  if (tref.value("included", false) && !templates_.get(tname)) {
    BH_CHECK(context(storage::validate_name("template", tname), "the replica's template"));
    BH_TRY(templates_.import_entries(
        tname, "replica:" + name,
        [&](storage::Extractor &x) { return reader.extract_template(x, nullptr, {}); }, nullptr, nullptr));
  }
  // A source that skipped replica.check on its kept connection assumed the template is still here.
  if (!templates_.get(tname))
    return fail(fmt::format("the replica set of {} needs template \"{}\", which is no longer on {}; the next "
                            "set carries it",
                            name, tname, options_.host_name),
                ENOENT);
  json meta = {{"name", name},
               {"source", peer.name},
               {"source_host", h.value("source_host", peer.name)},
               {"mode", h.value("mode", "")},
               {"state", state},
               {"set", set},
               {"images", images},
               {"bytes", got},
               {"checksum", sum.algorithm() + ":" + have},
               {"template", tname},
               {"received_unix_ms", now_unix_ms()},
               {"captured_unix_ms", h.value("captured_unix_ms", int64_t{0})}};
  BH_CHECK(write_file_atomic(staging.path + "/meta.json", meta.dump(2) + "\n", 0600));
  // Complete and verified: it becomes the current set in one rename.
  std::string final_dir = dir + "/set-" + set;
  (void)remove_tree(final_dir);
  if (::rename(staging.path.c_str(), final_dir.c_str()) < 0)
    return failf_errno("renaming {} to {}", staging.path, final_dir);
  staging.path = final_dir; // removed again if the switch below fails
  std::string link_tmp = dir + "/current.new";
  ::unlink(link_tmp.c_str());
  if (::symlink(("set-" + set).c_str(), link_tmp.c_str()) < 0)
    return failf_errno("creating {}", link_tmp);
  if (::rename(link_tmp.c_str(), (dir + "/current").c_str()) < 0) {
    auto err = failf_errno("renaming {} to {}/current", link_tmp, dir);
    ::unlink(link_tmp.c_str());
    return err;
  }
  staging.path.clear();
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd)
    ::fsync(dfd.get());
  // The answer first: the old set's removal is not the source's business, and its round (so the
  // container's loss window) ends with this answer.
  auto answered = conn.send({{"ok", true}, {"set", set}, {"chain", chain}, {"flatten_ms", flatten_ms}});
  if (!cur.empty() && cur != final_dir)
    (void)remove_tree(cur);
  if (adopted_ahead || parent_images.empty())
    discard_replica_flattening(name); // its work is in this set now, or of a chain that ended
  flatten_replica_ahead(name, final_dir + "/images", images, chain);
  return answered;
}

Status Daemon::serve_replica_drop(migration::PeerConnection &conn, const migration::PeerMessage &m) {
  std::string name = m.header.value("name", "");
  BH_CHECK(storage::validate_name("container", name));
  // The source asks for a drop once its last set's commit was answered; the receiver of that set
  // still finishes (its flattening ahead, its claim's release) after the answer. Under ASan the
  // drop came first and was refused as busy.
  BH_CHECK(claim_replica(name, "dropping a replica", std::chrono::seconds(5)));
  ReplicaClaim claim{[this, name] { release_replica(name); }};
  discard_replica_flattening(name);
  bool had = ::access(replica_dir(name).c_str(), F_OK) == 0;
  BH_CHECK(remove_tree(replica_dir(name)));
  if (had)
    fmt::print(stderr, "bulkheadd: dropped the replica of {} (its source unprotected it)\n", name);
  return conn.send({{"ok", true}, {"dropped", had}});
}

json Daemon::replicas() {
  json out = json::array();
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto &d : std::filesystem::directory_iterator(options_.root + "/replicas", ec))
    names.push_back(d.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto &name : names) {
    std::string cur = current_set(replica_dir(name));
    if (cur.empty())
      continue;
    auto text = read_file(cur + "/meta.json");
    json meta = text ? json::parse(*text, nullptr, false) : json();
    if (!meta.is_object())
      continue;
    int64_t received = meta.value("received_unix_ms", int64_t{0});
    out.push_back({{"name", name},
                   {"source", meta.value("source", "")},
                   {"source_host", meta.value("source_host", "")},
                   {"mode", meta.value("mode", "")},
                   {"state", meta.value("state", "")},
                   {"memory", !meta.value("images", std::string()).empty()},
                   {"age_ms", std::max<int64_t>(0, now_unix_ms() - received)},
                   {"bytes", tree_bytes(cur)},
                   {"checksum", meta.value("checksum", "")}});
  }
  return out;
}

Status Daemon::activate_replica(const std::string &name) {
  return activate_replica_report(name).map([](auto &&) {});
}

Result<json> Daemon::activate_replica_report(const std::string &name) {
  BH_CHECK(storage::validate_name("container", name));
  if (find(name))
    return fail(fmt::format("activating the replica of {}: container {} exists on {} already", name, name,
                            options_.host_name),
                EEXIST);
  {
    // A set still arriving is cut: an activation runs what is complete, and when its source host
    // died mid-stream (the reason for most activations) nothing else would end the stream until
    // TCP keepalive gives up (about 30 s), which the recovery time cannot afford. The receiver
    // removes its staging directory and releases the replica.
    cancel_replica_flattening(name); // a begin waiting for it ends now
    std::unique_lock lock(replica_mu_);
    if (auto it = replica_receiving_.find(name); it != replica_receiving_.end()) {
      fmt::print(stderr, "bulkheadd: activating {}: cutting the set arriving for it\n", name);
      ::shutdown(it->second, SHUT_RDWR);
      replica_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return !replica_busy_.count(name); });
    }
  }
  BH_CHECK(claim_replica(name, "activating a replica"));
  ReplicaClaim claim{[this, name] { release_replica(name); }};
  discard_replica_flattening(name);
  std::string cur = current_set(replica_dir(name));
  if (cur.empty())
    return fail(
        fmt::format("activating {}: {} holds no replica of it (bulkheadctl replica list shows those it "
                    "holds)",
                    name, options_.host_name),
        ENOENT);
  auto text = BH_TRY(read_file(cur + "/meta.json"));
  json meta = json::parse(text, nullptr, false);
  if (!meta.is_object())
    return fail(cur + "/meta.json is no JSON object", EINVAL);
  auto reader = BH_TRY(storage::ExportReader::open(cur + "/export.bhx"));
  auto config = BH_TRY(context(config_from_json(reader.manifest().value("container", json::object())),
                               cur + "/export.bhx: the container record"));
  Operation op(random_id(), "Activating the replica of " + name, "/1.0/containers/" + name);
  // Phases timed for the report and the event: recovery time is the product (docs/replication.md).
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  };
  const auto t_start = Clock::now();
  // Same name, addresses and limits (the NICs exactly as the source had them, as a migration's).
  std::string how = "stopped", note;
  std::string images = meta.value("images", std::string());
  // With memory images an unprivileged container needs its own id range here (CRIU's images carry
  // it); when another container here has it, its disk comes back in a range of this host instead.
  auto imported = import_full(reader, name, config, op, true, config.idmap && !images.empty());
  if (!imported && config.idmap && !images.empty() &&
      (imported.error().code == EBUSY || imported.error().code == ENOSPC)) {
    note = "its id range is not free here (" + imported.error().message + "); booted from its disk in a " +
           "range of this host";
    images.clear();
    auto again = BH_TRY(storage::ExportReader::open(cur + "/export.bhx"));
    imported = import_full(again, name, config, op, true, false);
  }
  BH_CHECK(context(std::move(imported), "activating the replica of " + name));
  const int64_t import_ms = ms_since(t_start);
  const auto t_run = Clock::now();
  if (meta.value("state", "") == "running") {
    how = "booted";
    if (!images.empty()) {
      auto e = BH_TRY(get(name));
      std::unique_lock lock(e->mu);
      // start_locked restores with the inbound lock and announces the addresses afterwards, as
      // the target of a live migration does.
      auto r = start_locked(*e, lock, cur + "/images/" + images);
      if (r)
        how = "restored";
      else
        note = "its memory images did not restore (" + r.error().text() + "); booted from its disk";
    } else if (note.empty()) {
      note = "a disk replica: booted from its disk (its memory was not replicated)";
    }
    if (how == "booted") {
      if (auto s = start(name); !s) {
        (void)remove_tree(replica_dir(name));
        return fail(fmt::format("activating the replica of {}: {}; starting it failed: {} (it stays here, "
                                "stopped)",
                                name, note, s.error().text()),
                    s.error().code);
      }
    }
  }
  const int64_t run_ms = ms_since(t_run);
  (void)remove_tree(replica_dir(name));
  // A stopped set is only imported: nothing booted, so no second phase is reported.
  json phases = {{"import", import_ms}};
  if (how != "stopped")
    phases[how == "restored" ? "restore" : "boot"] = run_ms;
  const int64_t captured = meta.value("captured_unix_ms", int64_t{0});
  std::string run_phase =
      how == "stopped" ? "" : fmt::format(", {} {}", how == "restored" ? "restore" : "boot", run_ms);
  fmt::print(stderr, "bulkheadd: activated the replica of {} from {} ({}) in {} ms (import {}{}){}{}\n", name,
             meta.value("source_host", std::string("?")), how, import_ms + run_ms, import_ms, run_phase,
             note.empty() ? "" : ": ", note);
  events_.publish("replica-activated", name,
                  {{"how", how},
                   {"source", meta.value("source_host", "")},
                   {"phases_ms", phases},
                   {"captured_unix_ms", captured}});
  json out = {{"name", name},
              {"how", how},
              {"source", meta.value("source", "")},
              {"source_host", meta.value("source_host", "")},
              {"mode", meta.value("mode", "")},
              {"age_ms", std::max<int64_t>(0, now_unix_ms() - meta.value("received_unix_ms", int64_t{0}))},
              {"captured_unix_ms", captured},
              {"phases_ms", phases}};
  if (!note.empty())
    out["note"] = note;
  return out;
}

} // namespace bulkhead::daemon
