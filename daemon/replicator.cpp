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
// |      | <root>/replication/NAME/set-ID.bhx              |                                      |
// | 5    | (a Shipment, on its own thread) replica.begin,  | the standby keeps its previous set;  |
// |      | replica.file..., replica.commit                 | the next dump is a full one          |
// Process model: one thread (replicator_loop) runs every protected container's steps 1-4, one
// round at a time: two freezes and two CRIU dumps never compete for the host's CPUs and memory,
// and the schedule lives in one place. Step 5 runs on a thread of its own (Shipment), so a round
// whose stream outlasts the interval does not push the next freeze back: the captures stay one
// interval apart, and the loss window is the interval plus one checkpoint, as long as a set
// streams within an interval. At most one set per container is on its way; a running
// container's next capture assumes it arrives (its dump may take that set's images as parent)
// and waits for it before its own step 5; if it did not arrive, that capture is dropped and the
// round after makes a full set. One connection per standby carries one set at a time: another
// container's round to that standby waits for the set on it first. The shipment thread touches
// only its own fields and its channel; its results are applied by the loop (apply_shipment).
// A standby that does not answer costs a round at most kConnectTimeoutS, so it delays the other
// containers' rounds by that much, never more.
// A round that committed leaves its connection open for the next round to the same standby: no
// TCP and TLS handshake per round, which in the VM took about 0.15 s of each round's check and
// the handshake's CPU on both hosts. A kept connection the standby closed meanwhile (its idle
// timeout, a restart) is replaced once within the round; one that does not answer in
// kConnectTimeoutS fails the round like a connect that does not.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

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
  // The freeze of the last committed set (steady clock): the next commit's "exposure".
  int64_t last_freeze_ms = 0;
  // The last captured set while it streams to the standby (null once its result is applied).
  std::shared_ptr<Shipment> shipping;
};

// One captured set on its way to the standby: step 5 of a round, on a thread of its own, so the
// next round's freeze comes on schedule while it streams. Everything it needs is copied in; it
// touches only its channel (which carries one set at a time) and its own results.
struct Daemon::Shipment {
  std::string name, mode, state, where, sig;
  Remote remote;
  ContainerConfig config;
  bool known = false;   // no replica.check on this connection (see Replication::committed_on)
  bool running = false; // the container's state at the capture
  std::string dir, file, images_name, parent_name, set_id, parent_set;
  int serial = 0, prev_chain = 0;
  int64_t captured_unix_ms = 0, round_start = 0, capture_start = 0, freeze_start = 0, export_start = 0,
          pause_ms = 0;
  std::optional<storage::StreamChecksum> sum;
  std::shared_ptr<ReplicaChannel> channel;
  // Results, read after `done` (or wait()).
  Status result;
  uint64_t sent = 0, channel_serial = 0;
  int64_t stream_start = 0, commit_start = 0, commit_end = 0;
  std::string cipher;
  std::atomic<bool> done{false};
  std::thread thread;
  std::mutex join_mu;
  Status wait(); // joins the thread (once, from any thread) and returns its result
  ~Shipment();
};

namespace {

// A refusal comes as "ADDR: message" (PeerConnection::request); anything else is a connection
// that broke or timed out: an unreachable standby.
Error from_remote(const Remote &remote, const std::string &where, const Error &err) {
  std::string msg = err.message;
  bool refused = msg.rfind(remote.address + ": ", 0) == 0;
  if (refused)
    msg.erase(0, remote.address.size() + 2);
  return Error{refused ? EREMOTE : EHOSTUNREACH, where + ": " + msg};
}

// Not a refusal ("ADDR: message") and not a silence: the peer closed its end.
bool closed_meanwhile(const Remote &remote, const Error &err) {
  return err.code != ETIMEDOUT && err.message.rfind(remote.address + ": ", 0) != 0;
}

void log_round_failure(const std::string &name, const std::string &standby, const Error &err,
                       int64_t interval_ms) {
  fmt::print(stderr, "bulkheadd: replicating {} to {}: {} (retried in {} ms)\n", name, standby, err.text(),
             interval_ms);
}

} // namespace

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
    repl_cv_.wait_for(lock, std::chrono::seconds(kTransferTimeoutS + 10), [&] {
      auto it = repl_.find(name);
      return repl_busy_ != name &&
             (it == repl_.end() || !it->second->shipping || it->second->shipping->done.load());
    });
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
  // Sets still on their way finish (or fail) before the daemon goes; destroyed outside the lock.
  std::map<std::string, std::shared_ptr<Replication>> left;
  {
    std::lock_guard lock(repl_mu_);
    left.swap(repl_);
  }
}

Status Daemon::Shipment::wait() {
  std::lock_guard lock(join_mu);
  if (thread.joinable())
    thread.join();
  return result;
}

Daemon::Shipment::~Shipment() { (void)wait(); }

// A set that reached the standby (or did not): what the source knows from now on.
Status Daemon::apply_shipment(Replication &st) {
  std::shared_ptr<Shipment> shipped = std::move(st.shipping);
  Shipment &s = *shipped;
  Status r = s.wait();
  if (!r) {
    int code = r.error().code;
    st.state = code == EHOSTUNREACH ? "standby unreachable" : code == EREMOTE ? "refused" : "failed";
    st.error = r.error().text();
    st.chain = 0; // the standby never got this set: the next dump is a full one
    return r;
  }
  // The standby holds the new set: the chain moves on, the images it no longer needs go (those
  // of a capture made after this one, numbered higher, stay).
  st.last_set = s.set_id;
  st.chain = s.images_name.empty() ? 0 : s.prev_chain + 1;
  {
    std::error_code ec;
    for (const auto &f : std::filesystem::directory_iterator(s.dir, ec)) {
      std::string fname = f.path().filename().string();
      if (fname.rfind("img-", 0) != 0)
        continue;
      int k = std::atoi(fname.c_str() + 4);
      if (s.images_name.empty() ? k <= s.serial : k <= s.serial - st.chain)
        (void)remove_tree(f.path().string());
    }
  }
  st.stopped_sig = s.running ? std::string() : s.sig;
  st.last_bytes = s.sent;
  st.channel = s.cipher + " " + s.sum->algorithm();
  st.committed_on = s.channel_serial;
  st.committed_checksum = s.sum->algorithm();
  st.syncs += 1;
  const int64_t previous_sync_ms = st.last_sync_ms;
  st.last_sync_ms = s.commit_end;
  st.last_round_ms = {{"check", s.capture_start - s.round_start},
                      {"before_freeze", s.freeze_start - s.capture_start},
                      {"pause", s.pause_ms},
                      {"export", s.stream_start - s.export_start},
                      {"stream", s.commit_start - s.stream_start},
                      {"commit", s.commit_end - s.commit_start}};
  // The commit before this one to this one: the interval when a round fits in it, the round's
  // length when it does not (the loss window's worst case is this plus a checkpoint).
  if (previous_sync_ms != 0)
    st.last_round_ms["period"] = st.last_sync_ms - previous_sync_ms;
  // The work lost had the host died just before this commit: the standby's newest state was the
  // set before's freeze. The bound is the interval plus one checkpoint (freeze to commit).
  if (st.last_freeze_ms != 0)
    st.last_round_ms["exposure"] = s.commit_end - st.last_freeze_ms;
  st.last_freeze_ms = s.freeze_start;
  st.state = "ok";
  st.error.clear();
  st.lag_bytes = 0;
  return {};
}

void Daemon::replicator_loop() {
  std::map<std::string, std::shared_ptr<ReplicaChannel>> channels; // by standby; this thread's only
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
    std::vector<std::shared_ptr<Replication>> dropped; // destroyed outside the lock
    std::vector<std::pair<std::string, Error>> shipped_failed;
    std::vector<std::shared_ptr<Shipment>> on_the_channel; // other containers' sets in flight
    {
      std::unique_lock lock(repl_mu_);
      if (repl_quit_)
        return;
      // Sets that arrived (or failed) since: their results, now.
      for (auto &[n, r] : repl_)
        if (r->shipping && r->shipping->done.load())
          if (auto res = apply_shipment(*r); !res)
            shipped_failed.emplace_back(n, res.error());
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
        if (r->shipping) // its results soon after it ends (its thread notifies; this bounds a miss)
          wait_ms = std::min<int64_t>(wait_ms, 100);
      }
      for (auto &[n, r] : repl_)
        if (!keep.count(n))
          dropped.push_back(r); // destroyed or unprotected containers drop out
      repl_.swap(keep);
      for (auto it = channels.begin(); it != channels.end();) {
        bool used = false;
        for (const auto &pn : protected_now)
          used = used || pn.second.standby == it->first;
        it = used ? std::next(it) : channels.erase(it); // no container goes there any more
      }
      if (!due_name.empty()) {
        repl_busy_ = due_name;
        // On the schedule, not from whenever this thread woke up: a late wake would otherwise
        // stretch every interval, and with it the loss window. A round that starts late because
        // the one before ran over (or another container's did) starts a new schedule: no
        // catch-up rounds at a shorter spacing.
        const bool on_time = st->next_due_ms > 0 && now - st->next_due_ms <= kWakeToleranceMs;
        st->next_due_ms = (on_time ? st->next_due_ms : now) + due.interval_ms;
        auto &ch = channels[due.standby];
        if (!ch)
          ch = std::make_shared<ReplicaChannel>();
        // One connection per standby carries one set at a time: another container's set on
        // it arrives first.
        for (auto &[n, r] : repl_)
          if (n != due_name && r->shipping && r->shipping->channel == ch)
            on_the_channel.push_back(r->shipping);
      }
    }
    for (const auto &[n, err] : shipped_failed)
      for (const auto &[pn, pp] : protected_now)
        if (pn == n)
          log_round_failure(n, pp.standby, err, pp.interval_ms);
    dropped.clear();
    if (due_name.empty()) {
      std::unique_lock lock(repl_mu_);
      if (!repl_quit_)
        repl_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(wait_ms, 10)));
      continue;
    }
    for (auto &s : on_the_channel)
      (void)s->wait(); // applied at the top of the next turn
    // The round works on a copy; what it learned goes back under the lock.
    Replication work;
    {
      std::lock_guard lock(repl_mu_);
      work = *st;
    }
    auto r = replicate_round(due_name, due, work, channels[due.standby]);
    {
      std::lock_guard lock(repl_mu_);
      if (!r) {
        int code = r.error().code;
        work.state = code == EHOSTUNREACH ? "standby unreachable" : code == EREMOTE ? "refused" : "failed";
        work.error = r.error().text();
      } else if (!work.shipping) {
        work.state = "ok"; // nothing to send (a stopped container, unchanged)
        work.error.clear();
        work.lag_bytes = 0;
      }
      work.next_due_ms = st->next_due_ms;
      *st = work;
      repl_busy_.clear();
    }
    repl_cv_.notify_all();
    if (!r)
      log_round_failure(due_name, due.standby, r.error(), due.interval_ms);
  }
}

Status Daemon::replicate_round(const std::string &name, const Protection &p, Replication &st,
                               const std::shared_ptr<ReplicaChannel> &channel_ptr) {
  ReplicaChannel &channel = *channel_ptr;
  const int64_t round_start = steady_ms();
  auto remote = trust_->remote(p.standby);
  if (!remote)
    return fail("standby " + p.standby + " is no longer a paired remote (remote add pairs it again)",
                EREMOTE);
  const std::string where = fmt::format("standby {} ({})", p.standby, remote->address);

  auto e = BH_TRY(get(name));
  ContainerConfig config;
  bool running = false;
  {
    std::lock_guard lock(e->mu);
    config = e->rec.config;
    running = e->watch_fd && e->rec.status.state == "running";
  }
  // The set of the round before may still be on its way (rounds overlap: this round's freeze comes
  // on schedule while the last set streams). A running container's capture goes ahead assuming
  // it arrives (its dump may use that set's images as parent) and waits for it before sending;
  // anything else waits for it now.
  if (st.shipping && (!running || st.shipping->done.load()))
    if (auto r = apply_shipment(st); !r)
      log_round_failure(name, p.standby, r.error(), p.interval_ms); // this round makes a fresh set
  std::shared_ptr<Shipment> before = st.shipping;
  const std::string expect_set = before ? before->set_id : st.last_set;
  const int expect_chain = before ? (before->images_name.empty() ? 0 : before->prev_chain + 1) : st.chain;

  // Step 1. A dead standby costs kConnectTimeoutS on a kept connection as on a new one.
  std::string standby_set;
  bool template_present = false;
  std::optional<storage::StreamChecksum> sum;
  bool known = false;
  if (before) {
    // The connection is the set before's; if it commits, what the standby holds is known.
    standby_set = expect_set;
    template_present = true;
    known = true;
    sum.emplace(BH_TRY(storage::StreamChecksum::make(before->sum->algorithm())));
  } else {
    if (channel.conn && (channel.address != remote->address || channel.fingerprint != remote->fingerprint))
      channel.conn.reset();
    const bool reused = channel.conn.has_value();
    if (!reused)
      BH_CHECK(open_replica_channel(channel, *remote, where));
    known = reused && channel.serial == st.committed_on && !st.last_set.empty() &&
            st.template_name == config.template_name;
    if (known) {
      standby_set = st.last_set;
      template_present = true;
      sum.emplace(BH_TRY(storage::StreamChecksum::make(st.committed_checksum)));
    } else {
      channel.conn->set_timeout(kConnectTimeoutS);
      auto check = channel.conn->request(replica_check_request(name, config, p.mode));
      if (!check && reused && closed_meanwhile(*remote, check.error())) {
        // The standby closed the kept connection meanwhile (idle timeout, restart): a new one, once.
        channel.conn.reset();
        BH_CHECK(open_replica_channel(channel, *remote, where));
        channel.conn->set_timeout(kConnectTimeoutS);
        check = channel.conn->request(replica_check_request(name, config, p.mode));
      }
      if (!check) {
        channel.conn.reset();
        return tl::unexpected(from_remote(*remote, where, check.error()));
      }
      standby_set = check->header.value("set", "");
      template_present = check->header.value("template_present", false);
      sum.emplace(BH_TRY(checksum_for_receiver(check->header)));
    }
  }
  std::string last_set = expect_set;
  int last_chain = expect_chain;
  if (standby_set != last_set) { // the standby lost or replaced our set: start a new chain
    last_set.clear();
    last_chain = 0;
  }
  // Step 2.
  std::string sig = to_json(config).dump() + upper_signature(records_.paths(name).upper);
  if (!running && !last_set.empty() && st.stopped_sig == sig) {
    st.last_bytes = 0;
    return {}; // nothing was sent: the connection is as good as before
  }

  // Step 3, under the container's lock (the same instant for files and memory).
  auto s = std::make_shared<Shipment>();
  s->name = name;
  s->mode = p.mode;
  s->where = where;
  s->remote = *remote;
  s->config = config;
  s->known = known;
  s->channel = channel_ptr;
  s->round_start = round_start;
  s->sig = sig;
  s->set_id = random_id();
  s->parent_set = last_set;
  const int64_t capture_start = steady_ms();
  s->capture_start = capture_start;
  const std::string dir = options_.root + "/replication/" + name;
  s->dir = dir;
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir);
  const bool memory = p.mode == "memory";
  std::string images_name, parent_name;
  PathGuard new_images;
  std::optional<SnapshotStaging> staging;
  s->serial = st.serial;
  uint64_t dumps_after = st.dumps, generation_after = st.generation;
  {
    auto e2 = BH_TRY(get(name));
    std::unique_lock lock(e2->mu);
    const auto &es = e2->rec.status;
    if (es.state == "starting" || es.state == "stopping")
      return fail(fmt::format("container {} is {}; the round is retried", name, es.state), EBUSY);
    // A fenced copy is stale (the cluster moved the container to another host): its images must
    // never replace what the standby, or the new owner, holds.
    if (!es.fenced_by.empty())
      return fail(fmt::format("container {} is fenced (the cluster placed it on {}); nothing is sent", name,
                              es.fenced_by),
                  EPERM);
    running = e2->watch_fd && es.state == "running";
    s->running = running;
    s->state = running ? "running" : "stopped";
    config = e2->rec.config;
    s->config = config;
    auto t0 = std::chrono::steady_clock::now();
    if (running && memory) {
      bool incremental = !last_set.empty() && last_chain > 0 && last_chain < kMaxChain &&
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
      s->freeze_start = steady_ms();
      s->captured_unix_ms = now_unix_ms();
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
      // The soft-dirty bits were reset by this dump, whether it reaches the standby or not: until
      // this set is on its way, no later dump may take an older set's images as parent (the set
      // before may still arrive and restore the chain's length, but not these pages).
      dumps_after = e2->dumps;
      generation_after = e2->generation;
      st.dumps = ~uint64_t{0};
      // Until the standby acknowledges this set, the chain is broken: a round that fails from here
      // on leaves the next dump a full one (the bits were reset for pages the standby never got).
      s->prev_chain = incremental ? last_chain : 0;
      st.chain = 0;
      BH_CHECK(dumped);
      st.serial = serial;
      s->serial = serial;
    } else {
      s->freeze_start = steady_ms();
      s->captured_unix_ms = now_unix_ms();
      staging.emplace(BH_TRY(copy_upper_locked(*e2, "replica", nullptr, nullptr)));
      st.last_pause_ms =
          running
              ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                    .count()
              : 0;
    }
  }
  s->pause_ms = st.last_pause_ms;
  s->images_name = images_name;
  s->parent_name = parent_name;

  // Step 4: the export of the staged copy, outside the lock (the container runs on meanwhile).
  s->export_start = steady_ms();
  auto tmpl = templates_.get(config.template_name);
  if (!tmpl)
    return fail("replicating " + name + ": its template \"" + config.template_name + "\" is gone", ENOENT);
  UniqueFd rootfs = BH_TRY(open_directory(templates_.rootfs_path(config.template_name)));
  if (st.template_name != config.template_name) {
    st.template_digest = BH_TRY(storage::tree_digest(rootfs.get(), nullptr));
    st.template_name = config.template_name;
  }
  // One file per set: the set before may still be read by its stream.
  s->file = dir + "/set-" + s->set_id + ".bhx";
  PathGuard file_guard{s->file};
  json manifest = {
      {"format", storage::kExportFormat},
      {"kind", "full"},
      {"created_at", now_unix_ms() / 1000},
      {"container", to_json(config)},
      {"template",
       {{"name", config.template_name}, {"digest", st.template_digest}, {"included", !template_present}}}};
  storage::ExportSource src{staging->upper_fd(), -1, template_present ? -1 : rootfs.get()};
  BH_TRY(context(storage::write_export(s->file, manifest, src, nullptr, nullptr), "writing " + s->file));
  staging.reset();
  s->sum = std::move(sum);

  uint64_t total = 0;
  {
    struct stat sb {};
    if (::stat(s->file.c_str(), &sb) == 0)
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
  st.state = "syncing";

  // The set before must have arrived: this one may be made against it.
  if (before) {
    if (auto r = apply_shipment(st); !r)
      return fail(
          fmt::format("{}; the set made after it was against it and is dropped too", r.error().message),
          r.error().code);
    // The standby holds what this capture assumed: its set, so this set's parent.
  }

  // Step 5, on its own thread: this thread's next round (of this container or another) comes on
  // schedule meanwhile.
  // This dump's pages are on their way: the next dump may be made against them.
  st.dumps = dumps_after;
  st.generation = generation_after;
  Shipment *raw = s.get();
  s->thread = std::thread([this, raw] {
    raw->result = ship_set(*raw);
    raw->done.store(true);
    repl_cv_.notify_all();
  });
  new_images.path.clear(); // the shipment's now; removed when it fails (apply_shipment: chain 0)
  file_guard.path.clear();
  st.shipping = std::move(s);
  return {};
}

Status Daemon::open_replica_channel(ReplicaChannel &channel, const Remote &remote, const std::string &where) {
  static std::atomic<uint64_t> opened{0};
  auto c = connect_remote(remote, *identity_, kConnectTimeoutS);
  if (!c)
    return fail(fmt::format("{} is unreachable: {}", where, c.error().message), EHOSTUNREACH);
  channel.conn.emplace(std::move(*c));
  channel.serial = ++opened;
  channel.address = remote.address;
  channel.fingerprint = remote.fingerprint;
  return {};
}

// Step 5 of a round: replica.begin, the files, replica.commit. Runs on the shipment's thread and
// touches nothing but the shipment and its channel (one set at a time per channel).
Status Daemon::ship_set(Shipment &s) {
  PathGuard file_guard{s.file}; // sent or not, the export is not needed again
  ReplicaChannel &channel = *s.channel;
  // Whatever goes wrong leaves the connection in an unknown state: only a commit keeps it.
  struct DropUnlessKept {
    ReplicaChannel &ch;
    bool keep = false;
    ~DropUnlessKept() {
      if (!keep)
        ch.conn.reset();
    }
  } drop{channel};
  if (!channel.conn) // the set before failed and dropped it
    return fail(s.where + ": the connection of the set before is gone", EHOSTUNREACH);
  auto &conn = channel.conn;
  s.stream_start = steady_ms();
  const json begin_request = {{"op", "replica.begin"},
                              {"name", s.name},
                              {"set", s.set_id},
                              {"parent_set", s.parent_name.empty() ? "" : s.parent_set},
                              {"images", s.images_name},
                              {"parent_images", s.parent_name},
                              {"mode", s.mode},
                              {"state", s.state},
                              {"captured_unix_ms", s.captured_unix_ms},
                              {"source_host", options_.host_name},
                              {"checksum", s.sum->algorithm()}};
  // Without a check, replica.begin is the first message: a dead standby fails it in
  // kConnectTimeoutS, as it would have failed the check.
  conn->set_timeout(s.known ? kConnectTimeoutS : kTransferTimeoutS);
  auto begin = conn->request(begin_request);
  if (!begin && s.known && closed_meanwhile(s.remote, begin.error())) {
    // The standby restarted since the last round (the check was skipped): a new connection, and
    // the check now. The set made for what the standby held goes only if it still holds that.
    conn.reset();
    BH_CHECK(open_replica_channel(channel, s.remote, s.where));
    conn->set_timeout(kConnectTimeoutS);
    auto check = BH_TRY(
        conn->request(replica_check_request(s.name, s.config, s.mode)).map_error([&](const Error &err) {
          return from_remote(s.remote, s.where, err);
        }));
    if (check.header.value("set", "") != s.parent_set || !check.header.value("template_present", false) ||
        checksum_for_receiver(check.header).map([](const auto &c) { return c.algorithm(); }) !=
            s.sum->algorithm())
      return fail(
          fmt::format("{} holds another set of {} since it restarted; the next round sends a full one",
                      s.where, s.name),
          ESTALE);
    begin = conn->request(begin_request);
  }
  if (!begin)
    return tl::unexpected(from_remote(s.remote, s.where, begin.error()));
  conn->set_timeout(kTransferTimeoutS);
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
      s.sum->update(buf.data(), static_cast<size_t>(n));
      if (auto r = conn->send(head, std::string_view(buf.data(), static_cast<size_t>(n))); !r)
        return tl::unexpected(from_remote(s.remote, s.where, r.error()));
      s.sent += static_cast<uint64_t>(n);
      if (n == 0)
        return {};
    }
  };
  BH_CHECK(send_file(s.file, {{"op", "replica.file"}, {"part", "export"}}));
  if (!s.images_name.empty()) {
    std::error_code ec;
    const std::string images = s.dir + "/" + s.images_name;
    for (const auto &f : std::filesystem::directory_iterator(images, ec)) {
      if (!f.is_regular_file(ec)) // CRIU's parent link is made again by the standby
        continue;
      BH_CHECK(
          send_file(f.path().string(),
                    {{"op", "replica.file"}, {"part", "image"}, {"file", f.path().filename().string()}}));
    }
    if (ec)
      return fail(fmt::format("listing {}: {}", images, ec.message()), ec.value());
  }
  s.commit_start = steady_ms();
  auto commit =
      conn->request({{"op", "replica.commit"}, {"bytes", s.sent}, {s.sum->algorithm(), s.sum->hex_digest()}});
  if (!commit)
    return tl::unexpected(from_remote(s.remote, s.where, commit.error()));
  s.commit_end = steady_ms();
  drop.keep = true;
  s.cipher = conn->cipher();
  s.channel_serial = channel.serial;
  return {};
}

} // namespace bulkhead::daemon
