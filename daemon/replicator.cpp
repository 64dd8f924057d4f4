// Continuous replication, the source side (issue 14, docs/replication.md): `bulkheadctl protect NAME
// --standby HOST` makes this host send, every interval, one consistent image set of NAME to the
// standby HOST (a paired remote of that name) over the peer channel; the standby side is
// daemon/daemon_replica.cpp, whose table of the peer messages is the protocol's reference.
//
// One round (replicate_round):
// | step | source                                          | failure leaves                       |
// |------|-------------------------------------------------|--------------------------------------|
// | 1    | connect (TLS, pinned) or the connection the     | nothing changed; "standby            |
// |      | last round to this standby left, replica.check  | unreachable" or the refusal          |
// |      | (not on the connection this container's last    |                                      |
// |      | round committed on: the answer is known)        |                                      |
// | 2    | stopped and unchanged since the last set: done  | -                                    |
// | 3    | freeze; copy the whole upper layer into staging;| thawed, running; staging and the new |
// |      | memory mode: CRIU dump, leave-running, with the | image dir removed; the next dump is  |
// |      | previous round's images as parent (only pages   | a full one                           |
// |      | dirtied since); thaw                            |                                      |
// | 4    | the export of the staged copy (+ the template   | as 3                                 |
// |      | when the standby lacks it) into                 |                                      |
// |      | <root>/replication/NAME/set.bhx                 |                                      |
// | 5    | replica.begin, replica.file..., replica.commit  | the standby keeps its previous set   |
// Process model: one thread (replicator_loop) runs every protected container's rounds, one at a
// time: two freezes and two CRIU dumps never compete for the host's CPUs and memory, and the
// schedule lives in one place. A standby that does not answer costs a round at most
// kConnectTimeoutS, so it delays the other containers' rounds by that much, never more.
// A round that committed leaves its connection open for the next round to the same standby (one
// per standby, as rounds never overlap): no TCP and TLS handshake per round, which in the VM took
// about 0.15 s of each round's check and the handshake's CPU on both hosts. A kept connection the
// standby closed meanwhile (its idle timeout, a restart) is replaced once within the round; one
// that does not answer in kConnectTimeoutS fails the round like a connect that does not.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "daemon/request_fields.hpp"
#include "storage/backup_archive.hpp"
#include "storage/stream_checksum.hpp"
#include "storage/tree.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kConnectTimeoutS = 3;
constexpr int kTransferTimeoutS = 120;
constexpr size_t kChunkBytes = size_t{4} << 20;
constexpr int64_t kMinIntervalMs = 1000;
constexpr int64_t kMaxIntervalMs = int64_t{24} * 3600 * 1000;
constexpr int64_t kDefaultIntervalMs = 2000;
// How late the replicator may wake for a round and still keep the schedule (condition variable
// and scheduler latency; in the TCG VM a few ms).
constexpr int64_t kWakeToleranceMs = 50;
// A memory chain (a full dump, then dumps of the pages changed since the one before) is cut after
// this many sets: the next dump is a full one and the older images go on both hosts, so neither
// keeps more than this many image directories of a container.
constexpr int kMaxChain = 8;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Removes a directory tree or a file when it goes out of scope, unless released.
struct PathGuard {
  std::string path;
  ~PathGuard() {
    if (!path.empty())
      (void)remove_tree(path);
  }
};

// What a stopped container's disk looks like now: its entries' count, sizes and newest change
// time (ctime: any write, rename, chmod or removal inside moves it). Equal twice: nothing to send.
std::string upper_signature(const std::string &upper) {
  uint64_t n = 0, bytes = 0;
  int64_t newest = 0;
  std::error_code ec;
  auto note = [&](const std::string &path) {
    struct stat sb {};
    if (::lstat(path.c_str(), &sb) < 0)
      return;
    ++n;
    bytes += static_cast<uint64_t>(sb.st_size);
    newest = std::max<int64_t>(newest, int64_t{sb.st_ctim.tv_sec} * 1000000000 + sb.st_ctim.tv_nsec);
  };
  note(upper);
  for (auto it = std::filesystem::recursive_directory_iterator(upper, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    note(it->path().string());
  return fmt::format("{}:{}:{}:{}", n, bytes, newest, ec ? ec.message() : "");
}

// replica.check (step 1): the standby answers whether it can hold NAME (and which set it holds).
json replica_check_request(const std::string &name, const ContainerConfig &config, const std::string &mode) {
  json networks = json::array();
  for (const auto &n : config.nets)
    networks.push_back(n.network);
  return {{"op", "replica.check"},
          {"name", name},
          {"template", config.template_name},
          {"networks", networks},
          {"mode", mode}};
}

} // namespace

// The connection kept from one round to the next of any container replicated to one standby.
struct Daemon::ReplicaChannel {
  std::string address, fingerprint; // what it was opened to: a re-paired remote gets a new one
  std::optional<migration::PeerConnection> conn;
  uint64_t serial = 0; // which connection this is (unique in the process): see Replication::committed_on
};

// What the source knows of one protected container's replication (info's "replication").
struct Daemon::Replication {
  std::string state = "syncing"; // ok | syncing | standby unreachable | refused | failed
  std::string error;
  int64_t last_sync_ms = 0; // steady clock of this host: ages never compare two hosts' clocks
  int64_t next_due_ms = 0;
  int64_t last_pause_ms = 0;
  // The last committed round's phases: before the freeze (staging, CRIU's start), the freeze,
  // the export, the stream (with hashing and TLS) and the standby's commit.
  nlohmann::json last_round_ms = nullptr;
  uint64_t last_bytes = 0, lag_bytes = 0, syncs = 0;
  std::string channel; // the last committed round's TLS suite and set checksum
  // The set the standby holds (as it acknowledged it) and the memory chain behind it.
  std::string last_set;
  int serial = 0; // the last image directory's number (img-SERIAL)
  int chain = 0;  // image directories in the standby's set (0: a disk set)
  uint64_t dumps = ~uint64_t{0}, generation = ~uint64_t{0}; // the entry's counters after our dump
  std::string stopped_sig; // a stopped container's record as last sent (unchanged: nothing to send)
  std::string template_name, template_digest; // the template's tree digest, hashed once
  // The connection (ReplicaChannel::serial) the last round committed on, and the checksum it used.
  // While that connection stays open the standby daemon has not restarted, so the next round
  // skips replica.check: it knows the answer (its own set, the template it sent or found, the same
  // checksum). Whatever changed on the standby meanwhile (an activation, a drop) makes
  // replica.begin refuse, as the check would have, and the round after checks again.
  uint64_t committed_on = 0;
  std::string committed_checksum;
};

json Daemon::replication_json(const std::string &name, const Protection &p) {
  json j = {{"standby", p.standby}, {"mode", p.mode}, {"interval_ms", p.interval_ms}};
  std::lock_guard lock(repl_mu_);
  auto it = repl_.find(name);
  if (it == repl_.end()) {
    j["state"] = "syncing";
    return j;
  }
  const auto &r = *it->second;
  j["state"] = r.state;
  if (!r.error.empty())
    j["error"] = r.error;
  j["last_sync_age_ms"] = r.last_sync_ms ? json(steady_ms() - r.last_sync_ms) : json(nullptr);
  j["lag_bytes"] = r.lag_bytes;
  j["last_pause_ms"] = r.last_pause_ms;
  j["last_round_ms"] = r.last_round_ms;
  j["last_bytes"] = r.last_bytes;
  if (!r.channel.empty())
    j["channel"] = r.channel;
  j["syncs"] = r.syncs;
  j["chain"] = r.chain;
  return j;
}

Result<json> Daemon::protect(const std::string &name, const json &req) {
  BH_CHECK(known_fields(req, {"standby", "interval_ms", "mode"}, "protect"));
  std::string standby = BH_TRY(string_field(req, "standby", true));
  std::string mode = BH_TRY(string_field(req, "mode", false));
  if (mode.empty())
    mode = "memory";
  if (mode != "memory" && mode != "disk")
    return fail("\"mode\" must be \"memory\" or \"disk\" (got \"" + mode + "\")", EINVAL);
  int64_t interval = kDefaultIntervalMs;
  if (req.contains("interval_ms")) {
    if (!req["interval_ms"].is_number_integer())
      return fail("\"interval_ms\" must be a number of milliseconds (got " + req["interval_ms"].dump() + ")",
                  EINVAL);
    interval = req["interval_ms"].get<int64_t>();
    if (interval < kMinIntervalMs || interval > kMaxIntervalMs)
      return fail(fmt::format("\"interval_ms\" {} is out of range: the interval is 1 s to 24 h "
                              "({} to {} ms)",
                              interval, kMinIntervalMs, kMaxIntervalMs),
                  EINVAL);
  }
  auto e = BH_TRY(get(name));
  if (standby == options_.host_name)
    return fail(fmt::format("standby \"{}\" is this host (bulkheadd --host-name {}): the standby of {} must "
                            "be another host",
                            standby, options_.host_name, name),
                EINVAL);
  auto remote = trust_->remote(standby);
  if (!remote)
    return fail(fmt::format("standby \"{}\" is not a paired remote (bulkheadctl remote list shows them; "
                            "remote add {} ADDRESS --token T pairs the standby under its host name)",
                            standby, standby),
                ENOENT);
  {
    std::lock_guard lock(e->mu);
    const auto &p = e->rec.protection;
    if (!p.standby.empty() && p.standby != standby)
      return fail(fmt::format("container {} is protected by standby {} already (bulkheadctl unprotect {} "
                              "first)",
                              name, p.standby, name),
                  EBUSY);
  }
  // Asked first, as migrate.check is: the standby refuses what it could never hold.
  auto conn = connect_remote(*remote, *identity_, kConnectTimeoutS);
  if (!conn)
    return fail(
        fmt::format("standby {} ({}) is unreachable: {}", standby, remote->address, conn.error().message),
        EBUSY);
  conn->set_timeout(kTransferTimeoutS);
  ContainerConfig config;
  {
    std::lock_guard lock(e->mu);
    config = e->rec.config;
  }
  auto check = conn->request(replica_check_request(name, config, mode));
  if (!check) {
    std::string msg = check.error().message;
    if (msg.rfind(remote->address + ": ", 0) == 0)
      msg.erase(0, remote->address.size() + 2);
    return fail(fmt::format("standby {} ({}) refuses to hold a replica of {}: {}", standby, remote->address,
                            name, msg),
                check.error().code == EEXIST ? EEXIST : EBUSY);
  }
  Protection p{standby, interval, mode};
  {
    std::lock_guard lock(e->mu);
    e->rec.protection = p;
    BH_CHECK(save_locked(*e));
  }
  {
    std::lock_guard lock(repl_mu_);
    auto &r = repl_[name];
    if (!r)
      r = std::make_shared<Replication>();
    r->next_due_ms = 0; // the first set goes now
  }
  repl_cv_.notify_all();
  events_.publish("container-protected", name, {{"standby", standby}, {"mode", mode}});
  return replication_json(name, p);
}

Status Daemon::send_replica_drop(const std::string &standby, const std::string &name) {
  auto remote = BH_TRY(trust_->remote(standby));
  auto conn = connect_remote(remote, *identity_, kConnectTimeoutS);
  if (!conn)
    return fail(
        fmt::format("standby {} ({}) is unreachable: {}", standby, remote.address, conn.error().message),
        EHOSTUNREACH);
  conn->set_timeout(kTransferTimeoutS);
  return conn->request({{"op", "replica.drop"}, {"name", name}}).map([](auto &&) {});
}

Result<json> Daemon::unprotect(const std::string &name) {
  auto e = BH_TRY(get(name));
  std::string standby;
  {
    std::lock_guard lock(e->mu);
    standby = e->rec.protection.standby;
    if (standby.empty())
      return fail("container " + name + " is not protected", EINVAL);
    e->rec.protection = Protection{};
    BH_CHECK(save_locked(*e));
  }
  {
    // A round in flight finishes first, so no set reaches the standby after its drop.
    std::unique_lock lock(repl_mu_);
    repl_cv_.wait_for(lock, std::chrono::seconds(kTransferTimeoutS + 10), [&] { return repl_busy_ != name; });
    repl_.erase(name);
  }
  (void)remove_tree(options_.root + "/replication/" + name);
  json out = {{"name", name}, {"standby", standby}, {"standby_dropped", true}};
  if (auto d = send_replica_drop(standby, name); !d) {
    out["standby_dropped"] = false;
    out["note"] = fmt::format("{} was not told to drop its replica, which stays there until it is "
                              "activated or the standby is told again (protect, then unprotect): {}",
                              standby, d.error().message);
  }
  events_.publish("container-unprotected", name, {{"standby", standby}});
  return out;
}

void Daemon::start_replicator() {
  // The image chains of a previous run are not trusted: the first round of each container is a
  // full one.
  (void)remove_tree(options_.root + "/replication");
  if (::mkdir((options_.root + "/replication").c_str(), 0700) < 0 && errno != EEXIST)
    fmt::print(stderr, "bulkheadd: warning: creating {}/replication: {}\n", options_.root,
               std::strerror(errno));
  replicator_ = std::thread([this] { replicator_loop(); });
}

void Daemon::stop_replicator() {
  {
    std::lock_guard lock(repl_mu_);
    repl_quit_ = true;
  }
  repl_cv_.notify_all();
  if (replicator_.joinable())
    replicator_.join();
}

void Daemon::replicator_loop() {
  std::map<std::string, ReplicaChannel> channels; // by standby; this thread's only
  for (;;) {
    // The protected containers, read from their records (the intent survives restarts there).
    std::vector<std::pair<std::string, Protection>> protected_now;
    std::vector<EntryPtr> all;
    {
      std::lock_guard lock(table_mu_);
      for (auto &[n, e] : entries_)
        all.push_back(e);
    }
    for (auto &e : all) {
      std::lock_guard lock(e->mu);
      if (!e->rec.protection.standby.empty())
        protected_now.emplace_back(e->rec.config.name, e->rec.protection);
    }
    std::string due_name;
    Protection due;
    std::shared_ptr<Replication> st;
    int64_t wait_ms = 1000;
    {
      std::unique_lock lock(repl_mu_);
      if (repl_quit_)
        return;
      std::map<std::string, std::shared_ptr<Replication>> keep;
      int64_t now = steady_ms();
      for (auto &[n, p] : protected_now) {
        auto &r = repl_[n];
        if (!r)
          r = std::make_shared<Replication>();
        keep[n] = r;
        if (r->next_due_ms <= now && due_name.empty()) {
          due_name = n;
          due = p;
          st = r;
        } else {
          wait_ms = std::min(wait_ms, std::max<int64_t>(0, r->next_due_ms - now));
        }
      }
      repl_.swap(keep); // destroyed or unprotected containers drop out
      for (auto it = channels.begin(); it != channels.end();) {
        bool used = false;
        for (const auto &pn : protected_now)
          used = used || pn.second.standby == it->first;
        it = used ? std::next(it) : channels.erase(it); // no container goes there any more
      }
      if (due_name.empty()) {
        repl_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(wait_ms, 10)));
        continue;
      }
      repl_busy_ = due_name;
      // On the schedule, not from whenever this thread woke up: a late wake would otherwise
      // stretch every interval, and with it the loss window. A round that starts late because
      // the one before ran over (or another container's did) starts a new schedule: no catch-up
      // rounds at a shorter spacing.
      const bool on_time = st->next_due_ms > 0 && now - st->next_due_ms <= kWakeToleranceMs;
      st->next_due_ms = (on_time ? st->next_due_ms : now) + due.interval_ms;
    }
    // The round works on a copy; what it learned goes back under the lock.
    Replication work;
    {
      std::lock_guard lock(repl_mu_);
      work = *st;
    }
    auto r = replicate_round(due_name, due, work, channels[due.standby]);
    {
      std::lock_guard lock(repl_mu_);
      if (r) {
        work.state = "ok";
        work.error.clear();
        work.lag_bytes = 0;
      } else {
        int code = r.error().code;
        work.state = code == EHOSTUNREACH ? "standby unreachable" : code == EREMOTE ? "refused" : "failed";
        work.error = r.error().text();
      }
      work.next_due_ms = st->next_due_ms;
      *st = work;
      repl_busy_.clear();
    }
    repl_cv_.notify_all();
    if (!r)
      fmt::print(stderr, "bulkheadd: replicating {} to {}: {} (retried in {} ms)\n", due_name, due.standby,
                 r.error().text(), due.interval_ms);
  }
}

Status Daemon::replicate_round(const std::string &name, const Protection &p, Replication &st,
                               ReplicaChannel &channel) {
  const int64_t round_start = steady_ms();
  auto remote = trust_->remote(p.standby);
  if (!remote)
    return fail("standby " + p.standby + " is no longer a paired remote (remote add pairs it again)",
                EREMOTE);
  const std::string where = fmt::format("standby {} ({})", p.standby, remote->address);
  if (channel.conn && (channel.address != remote->address || channel.fingerprint != remote->fingerprint))
    channel.conn.reset();
  // Whatever goes wrong from here leaves the connection in an unknown state: only a committed
  // round keeps it.
  struct DropUnlessKept {
    ReplicaChannel &ch;
    bool keep = false;
    ~DropUnlessKept() {
      if (!keep)
        ch.conn.reset();
    }
  } drop{channel};
  auto open = [&]() -> Status {
    static uint64_t opened = 0; // the replicator thread's only
    auto c = connect_remote(*remote, *identity_, kConnectTimeoutS);
    if (!c)
      return fail(fmt::format("{} is unreachable: {}", where, c.error().message), EHOSTUNREACH);
    channel.conn.emplace(std::move(*c));
    channel.serial = ++opened;
    channel.address = remote->address;
    channel.fingerprint = remote->fingerprint;
    return {};
  };
  const bool reused = channel.conn.has_value();
  if (!reused)
    BH_CHECK(open());
  // A refusal comes as "ADDR: message" (PeerConnection::request); anything else is a connection
  // that broke or timed out: an unreachable standby.
  auto from_remote = [&](const Error &err) {
    std::string msg = err.message;
    bool refused = msg.rfind(remote->address + ": ", 0) == 0;
    if (refused)
      msg.erase(0, remote->address.size() + 2);
    return Error{refused ? EREMOTE : EHOSTUNREACH, where + ": " + msg};
  };

  // Not a refusal ("ADDR: message") and not a silence: the peer closed its end.
  auto closed_meanwhile = [&](const Error &err) {
    return err.code != ETIMEDOUT && err.message.rfind(remote->address + ": ", 0) != 0;
  };

  auto e = BH_TRY(get(name));
  ContainerConfig config;
  bool running = false;
  {
    std::lock_guard lock(e->mu);
    config = e->rec.config;
    running = e->watch_fd && e->rec.status.state == "running";
  }
  // Step 1. A dead standby costs kConnectTimeoutS on a kept connection as on a new one.
  std::string standby_set;
  bool template_present = false;
  std::optional<storage::StreamChecksum> sum;
  const bool known = reused && channel.serial == st.committed_on && !st.last_set.empty() &&
                     st.template_name == config.template_name;
  if (known) {
    standby_set = st.last_set;
    template_present = true;
    sum.emplace(BH_TRY(storage::StreamChecksum::make(st.committed_checksum)));
  } else {
    channel.conn->set_timeout(kConnectTimeoutS);
    auto check = channel.conn->request(replica_check_request(name, config, p.mode));
    if (!check && reused && closed_meanwhile(check.error())) {
      // The standby closed the kept connection meanwhile (idle timeout, restart): a new one, once.
      channel.conn.reset();
      BH_CHECK(open());
      channel.conn->set_timeout(kConnectTimeoutS);
      check = channel.conn->request(replica_check_request(name, config, p.mode));
    }
    if (!check)
      return tl::unexpected(from_remote(check.error()));
    standby_set = check->header.value("set", "");
    template_present = check->header.value("template_present", false);
    sum.emplace(BH_TRY(checksum_for_receiver(check->header)));
  }
  auto &conn = channel.conn;
  // Without a check, replica.begin is the first message: a dead standby fails it in
  // kConnectTimeoutS, as it would have failed the check.
  conn->set_timeout(known ? kConnectTimeoutS : kTransferTimeoutS);
  if (standby_set != st.last_set) { // the standby lost or replaced our set: start a new chain
    st.last_set.clear();
    st.chain = 0;
  }
  // Step 2.
  std::string sig = to_json(config).dump() + upper_signature(records_.paths(name).upper);
  if (!running && !st.last_set.empty() && st.stopped_sig == sig) {
    st.last_bytes = 0;
    drop.keep = true; // nothing was sent: the connection is as good as before
    return {};
  }

  // Step 3, under the container's lock (the same instant for files and memory).
  const int64_t capture_start = steady_ms();
  int64_t freeze_start = 0;
  const std::string dir = options_.root + "/replication/" + name;
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir);
  const bool memory = p.mode == "memory";
  std::string images_name, parent_name;
  PathGuard new_images;
  std::optional<SnapshotStaging> staging;
  std::string state;
  int prev_chain = 0;
  // The instant the set's state is taken (wall clock, only reported: the standby shows it and the
  // failover bench measures the loss window with it; nothing decides on it).
  int64_t captured_unix_ms = 0;
  {
    auto e2 = BH_TRY(get(name));
    std::unique_lock lock(e2->mu);
    const auto &s = e2->rec.status;
    if (s.state == "starting" || s.state == "stopping")
      return fail(fmt::format("container {} is {}; the round is retried", name, s.state), EBUSY);
    // A fenced copy is stale (the cluster moved the container to another host): its images must
    // never replace what the standby, or the new owner, holds.
    if (!s.fenced_by.empty())
      return fail(fmt::format("container {} is fenced (the cluster placed it on {}); nothing is sent", name,
                              s.fenced_by),
                  EPERM);
    running = e2->watch_fd && s.state == "running";
    state = running ? "running" : "stopped";
    config = e2->rec.config;
    auto t0 = std::chrono::steady_clock::now();
    if (running && memory) {
      bool incremental = !st.last_set.empty() && st.chain > 0 && st.chain < kMaxChain &&
                         st.dumps == e2->dumps && st.generation == e2->generation &&
                         ::access(fmt::format("{}/img-{}", dir, st.serial).c_str(), F_OK) == 0;
      int serial = st.serial + 1;
      images_name = fmt::format("img-{}", serial);
      if (incremental)
        parent_name = fmt::format("img-{}", st.serial);
      std::string images = dir + "/" + images_name;
      (void)remove_tree(images);
      if (::mkdir(images.c_str(), 0700) < 0)
        return failf_errno("creating {}", images);
      new_images.path = images;
      staging.emplace(BH_TRY(snapshots_.stage(name, "replica")));
      UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
      auto prepared =
          BH_TRY(prepare_dump(name, images, false, parent_name.empty() ? "" : "../" + parent_name));
      auto rt = runtime();
      BH_CHECK(context(rt.pause(name), "freezing " + name + " for a replication round"));
      t0 = std::chrono::steady_clock::now();
      freeze_start = steady_ms();
      captured_unix_ms = now_unix_ms();
      Status dumped = context(storage::copy_upper(upper.get(), staging->upper_fd(), nullptr, nullptr),
                              "copying the upper layer of " + name);
      if (dumped)
        dumped = dump_locked(*e2, lock, prepared, false);
      // Thawed whatever happened: a failed round never leaves the container frozen.
      if (auto t = rt.resume(name); !t && dumped)
        dumped = tl::unexpected(with_context(t.error(), "thawing " + name + " after a replication round"));
      st.last_pause_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
              .count();
      // The soft-dirty bits were reset by this dump, whether it reaches the standby or not.
      st.dumps = e2->dumps;
      st.generation = e2->generation;
      // Until the standby acknowledges this set, the chain is broken: a round that fails from here
      // on leaves the next dump a full one (the bits were reset for pages the standby never got).
      prev_chain = incremental ? st.chain : 0;
      st.chain = 0;
      BH_CHECK(dumped);
      st.serial = serial;
    } else {
      freeze_start = steady_ms();
      captured_unix_ms = now_unix_ms();
      staging.emplace(BH_TRY(copy_upper_locked(*e2, "replica", nullptr, nullptr)));
      st.last_pause_ms =
          running
              ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                    .count()
              : 0;
    }
  }

  // Step 4: the export of the staged copy, outside the lock (the container runs on meanwhile).
  const int64_t export_start = steady_ms();
  auto tmpl = templates_.get(config.template_name);
  if (!tmpl)
    return fail("replicating " + name + ": its template \"" + config.template_name + "\" is gone", ENOENT);
  UniqueFd rootfs = BH_TRY(open_directory(templates_.rootfs_path(config.template_name)));
  if (st.template_name != config.template_name) {
    st.template_digest = BH_TRY(storage::tree_digest(rootfs.get(), nullptr));
    st.template_name = config.template_name;
  }
  std::string file = dir + "/set.bhx";
  (void)::unlink(file.c_str());
  PathGuard file_guard{file};
  json manifest = {
      {"format", storage::kExportFormat},
      {"kind", "full"},
      {"created_at", now_unix_ms() / 1000},
      {"container", to_json(config)},
      {"template",
       {{"name", config.template_name}, {"digest", st.template_digest}, {"included", !template_present}}}};
  storage::ExportSource src{staging->upper_fd(), -1, template_present ? -1 : rootfs.get()};
  BH_TRY(context(storage::write_export(file, manifest, src, nullptr, nullptr), "writing " + file));
  staging.reset();

  // Step 5.
  const int64_t stream_start = steady_ms();
  std::string set_id = random_id();
  uint64_t total = 0;
  {
    struct stat sb {};
    if (::stat(file.c_str(), &sb) == 0)
      total += static_cast<uint64_t>(sb.st_size);
    std::error_code ec;
    if (!images_name.empty())
      for (const auto &f : std::filesystem::directory_iterator(dir + "/" + images_name, ec))
        if (f.is_regular_file(ec))
          total += f.file_size(ec);
  }
  {
    std::lock_guard lock(repl_mu_);
    if (auto it = repl_.find(name); it != repl_.end()) {
      it->second->state = "syncing";
      it->second->lag_bytes = total;
    }
  }
  st.lag_bytes = total;
  const json begin_request = {{"op", "replica.begin"},
                              {"name", name},
                              {"set", set_id},
                              {"parent_set", parent_name.empty() ? "" : st.last_set},
                              {"images", images_name},
                              {"parent_images", parent_name},
                              {"mode", p.mode},
                              {"state", state},
                              {"captured_unix_ms", captured_unix_ms},
                              {"source_host", options_.host_name},
                              {"checksum", sum->algorithm()}};
  auto begin = conn->request(begin_request);
  if (!begin && known && closed_meanwhile(begin.error())) {
    // The standby restarted since the last round (the check was skipped): a new connection, and
    // the check now. The set made for what the standby held goes only if it still holds that.
    conn.reset();
    BH_CHECK(open());
    conn->set_timeout(kConnectTimeoutS);
    auto check =
        BH_TRY(conn->request(replica_check_request(name, config, p.mode)).map_error([&](const Error &err) {
          return from_remote(err);
        }));
    if (check.header.value("set", "") != standby_set || !check.header.value("template_present", false) ||
        checksum_for_receiver(check.header).map([](const auto &c) { return c.algorithm(); }) !=
            sum->algorithm())
      return fail(
          fmt::format("{} holds another set of {} since it restarted; the next round sends a full one", where,
                      name),
          ESTALE);
    begin = conn->request(begin_request);
  }
  if (!begin)
    return tl::unexpected(from_remote(begin.error()));
  conn->set_timeout(kTransferTimeoutS);
  uint64_t sent = 0;
  std::string buf(kChunkBytes, '\0');
  auto send_file = [&](const std::string &path, json head) -> Status {
    UniqueFd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in)
      return failf_errno("opening {}", path);
    for (bool first = true;; first = false) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return failf_errno("reading {}", path);
      if (n == 0 && !first)
        return {};
      sum->update(buf.data(), static_cast<size_t>(n));
      if (auto s = conn->send(head, std::string_view(buf.data(), static_cast<size_t>(n))); !s)
        return tl::unexpected(from_remote(s.error()));
      sent += static_cast<uint64_t>(n);
      if (n == 0)
        return {};
    }
  };
  BH_CHECK(send_file(file, {{"op", "replica.file"}, {"part", "export"}}));
  if (!images_name.empty()) {
    std::error_code ec;
    for (const auto &f : std::filesystem::directory_iterator(dir + "/" + images_name, ec)) {
      if (!f.is_regular_file(ec)) // CRIU's parent link is made again by the standby
        continue;
      BH_CHECK(
          send_file(f.path().string(),
                    {{"op", "replica.file"}, {"part", "image"}, {"file", f.path().filename().string()}}));
    }
    if (ec)
      return fail(fmt::format("listing {}/{}: {}", dir, images_name, ec.message()), ec.value());
  }
  const int64_t commit_start = steady_ms();
  auto commit =
      conn->request({{"op", "replica.commit"}, {"bytes", sent}, {sum->algorithm(), sum->hex_digest()}});
  if (!commit)
    return tl::unexpected(from_remote(commit.error()));

  // The standby holds the new set: the chain moves on, the images it no longer needs go.
  drop.keep = true;
  new_images.path.clear();
  st.last_set = set_id;
  st.chain = images_name.empty() ? 0 : prev_chain + 1;
  {
    std::error_code ec;
    for (const auto &f : std::filesystem::directory_iterator(dir, ec)) {
      std::string fname = f.path().filename().string();
      if (fname.rfind("img-", 0) != 0)
        continue;
      int k = std::atoi(fname.c_str() + 4);
      if (images_name.empty() || k <= st.serial - st.chain)
        (void)remove_tree(f.path().string());
    }
  }
  st.stopped_sig = running ? std::string() : sig;
  st.last_bytes = sent;
  st.channel = conn->cipher() + " " + sum->algorithm();
  st.committed_on = channel.serial;
  st.committed_checksum = sum->algorithm();
  st.syncs += 1;
  const int64_t previous_sync_ms = st.last_sync_ms;
  st.last_sync_ms = steady_ms();
  st.last_round_ms = {{"check", capture_start - round_start},
                      {"before_freeze", freeze_start - capture_start},
                      {"pause", st.last_pause_ms},
                      {"export", stream_start - export_start},
                      {"stream", commit_start - stream_start},
                      {"commit", st.last_sync_ms - commit_start}};
  // The commit before this one to this one: the interval when a round fits in it, the round's
  // length when it does not (the loss window's worst case is this plus a checkpoint).
  if (previous_sync_ms != 0)
    st.last_round_ms["period"] = st.last_sync_ms - previous_sync_ms;
  return {};
}

} // namespace bulkhead::daemon
