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
// streams within an interval. At most kMaxSetsInFlight (3) sets per container are on their way: a
// running container's next capture assumes the set before arrives (its dump may take that set's
// images as parent), and its shipment thread waits for that set before its own step 5; if it did
// not arrive, the capture is dropped unsent and the round after makes a full set. A capture
// beyond that many waits for the oldest first, so a set whose stream ran long delays a later
// freeze only when it outlasts that many intervals (it used to hold this thread, and so the next
// freeze). Each turn applies the sets that arrived, oldest first. One connection
// per standby carries one set at a time: another container's round to that standby waits for the set on it
// first. The shipment thread touches only its own fields and its channel; its results are applied by the loop
// (apply_shipment). A standby that does not answer costs a round at most kConnectTimeoutS, so it delays the
// other containers' rounds by that much, never more. A round that committed leaves its connection open for
// the next round to the same standby: no TCP and TLS handshake per round, which in the VM took about 0.15 s
// of each round's check and the handshake's CPU on both hosts. A kept connection the standby closed meanwhile
// (its idle timeout, a restart) is replaced once within the round; one that does not answer in
// kConnectTimeoutS fails the round like a connect that does not. A memory round's CRIU worker is
// asked for right after the round before froze (Entry::standing_dump; docs/replication.md "The
// worker started ahead"): CRIU's start is then off this thread's path.
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
#include "daemon/replication_state.hpp"
#include "daemon/request_fields.hpp"
#include "daemon/urgent_window.hpp"
#include "storage/backup_archive.hpp"
#include "storage/tree.hpp"
#include "storage/upper_tree.hpp"
namespace bulkhead::daemon {

using nlohmann::json;
using namespace replication;

namespace {

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
  j["recent_rounds"] = json(r.recent_rounds);
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
  auto remote = peer_remote(standby);
  if (!remote)
    return fail(
        fmt::format("standby \"{}\" is not a paired remote (bulkheadctl remote list shows them; "
                    "remote add {} ADDRESS --token T pairs the standby under its host name) nor a host "
                    "of this host's cluster trust (cluster join)",
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
    e->standing_dump.reset(); // made for the protection before (its mode, its interval)
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
  auto remote = BH_TRY(peer_remote(standby));
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
    e->standing_dump.reset();
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

void Daemon::replicator_loop() {
  std::map<std::string, std::shared_ptr<ReplicaChannel>> channels; // by standby; this thread's only
  for (;;) {
    // This turn's start: a due round's preparation is measured from here, so the lead before its
    // freeze also covers what the turn does first (the records, the results of sets that arrived
    // and their directories' removal, another container's set on the same channel).
    const int64_t turn_start = steady_ms();
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
    int64_t freeze_at = 0;
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
        while (r->shipping && r->oldest_arrived())
          if (auto res = apply_oldest_shipment(*r); !res)
            shipped_failed.emplace_back(n, res.error());
      std::map<std::string, std::shared_ptr<Replication>> keep;
      int64_t now = steady_ms();
      for (auto &[n, p] : protected_now) {
        auto &r = repl_[n];
        if (!r)
          r = std::make_shared<Replication>();
        keep[n] = r;
        // The scheduled instant is the freeze's: the round starts its preparation ahead of it.
        const int64_t lead =
            r->next_due_ms > 0 ? preparation_lead(r->preparations.longest(), p.interval_ms) : 0;
        if (r->next_due_ms - lead <= now && due_name.empty()) {
          due_name = n;
          due = p;
          st = r;
        } else {
          wait_ms = std::min(wait_ms, std::max<int64_t>(0, r->next_due_ms - lead - now));
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
        freeze_at = st->next_due_ms;
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
    work.round_freeze_ms = 0;
    auto r = replicate_round(due_name, due, work, channels[due.standby], freeze_at, turn_start);
    {
      std::lock_guard lock(repl_mu_);
      if (!r)
        work.set_failed(r.error());
      else if (!work.shipping)
        work.set_ok(); // nothing to send (a stopped container, unchanged)
      work.next_due_ms = st->next_due_ms;
      // A round that froze schedules the next freeze from its own, less the wake slack, so that
      // wake jitter never stretches the gap between two freezes beyond the interval.
      if (work.round_freeze_ms > 0)
        work.next_due_ms =
            work.round_freeze_ms + due.interval_ms - wake_slack(work.wake_ups.longest(), due.interval_ms);
      *st = work;
      repl_busy_.clear();
    }
    repl_cv_.notify_all();
    if (!r)
      log_round_failure(due_name, due.standby, r.error(), due.interval_ms);
  }
}

Status Daemon::replicate_round(const std::string &name, const Protection &p, Replication &st,
                               const std::shared_ptr<ReplicaChannel> &channel_ptr, int64_t freeze_at_ms,
                               int64_t turn_start_ms) {
  ReplicaChannel &channel = *channel_ptr;
  const int64_t round_start = steady_ms();
  auto remote = peer_remote(p.standby);
  if (!remote)
    return fail("standby " + p.standby +
                    " is no longer a paired remote nor in the cluster's trust (remote add pairs it again)",
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
  // At most kMaxSetsInFlight sets on their way: a capture beyond that waits for the oldest (the
  // newer ones follow it on the channel, so a set whose stream ran long delays a later freeze
  // only when it outlasts that many intervals).
  const int64_t oldest_wait_start = steady_ms();
  while (st.shipping && st.sets_in_flight() >= kMaxSetsInFlight)
    if (auto r = apply_oldest_shipment(st); !r) {
      log_round_failure(name, p.standby, r.error(), p.interval_ms);
      (void)apply_shipment(st); // made against the one that failed: they failed too, unsent
    }
  const int64_t oldest_wait_ms = steady_ms() - oldest_wait_start;
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

  // The freeze comes at its scheduled instant (the round started its preparation ahead of it), so
  // freezes stay one interval apart whatever the preparation took.
  // The wait holds the container's lock, as the preparation before it does (0.3-0.9 s under TCG):
  // released, a request meanwhile (a checkpoint, a migration) would find the monitor's one
  // checkpoint worker taken and fail instead of waiting its turn.
  bool waited = false;
  // From the wait to the freeze this thread runs ahead of the container, the streams and the
  // standby on the same CPUs (daemon/urgent_window.hpp): in the VM, a freeze woke 26 ms late at
  // ordinary priority, beyond the wake slack, and so one round's gap exceeded the interval.
  std::optional<UrgentWindow> urgent;
  auto wait_for_freeze_instant = [&]() {
    urgent.emplace();
    const int64_t ready = steady_ms();
    st.preparations.note(ready - turn_start_ms); // the turn starts before the round
    // Until the instant itself (a sleep of whole ms from a truncated "now" came up to 1 ms late).
    waited = freeze_at_ms > ready && freeze_at_ms - ready <= kMaxLeadMs;
    if (waited)
      std::this_thread::sleep_until(
          std::chrono::steady_clock::time_point(std::chrono::milliseconds(freeze_at_ms)));
  };
  // The freeze came: how late on an instant it waited for (a preparation that ran past its
  // instant is the lead's business, not the wake's), and the next schedule's start.
  auto frozen = [&](int64_t at) {
    if (waited)
      st.wake_ups.note(std::max<int64_t>(0, at - freeze_at_ms));
    st.round_freeze_ms = at;
  };

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
  s->oldest_wait_ms = oldest_wait_ms;
  s->freeze_due = freeze_at_ms;
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
    const int64_t lock_start = steady_ms();
    std::unique_lock lock(e2->mu);
    s->lock_wait_ms = steady_ms() - lock_start;
    const auto &es = e2->rec.status;
    if (es.state == "starting" || es.state == "stopping")
      return fail(fmt::format("container {} is {}; the round is retried", name, es.state), EBUSY);
    // A fenced copy is stale (the cluster moved the container to another host): its images must
    // never replace what the standby, or the new owner, holds.
    if (!es.fenced_by.empty())
      return fail(fmt::format("container {} is fenced (the cluster placed it on {}); nothing is sent", name,
                              es.fenced_by),
                  EPERM);
    // Frozen by the self-fence (this host may be declared dead): the standby keeps its last set.
    if (SelfFence *f = self_fence_ptr_; f && f->holds(name))
      return fail(
          fmt::format("container {} is frozen until etcd answers (self-fence); nothing is sent", name),
          EAGAIN);
    running = e2->watch_fd && es.state == "running";
    s->running = running;
    s->state = running ? "running" : "stopped";
    config = e2->rec.config;
    s->config = config;
    auto t0 = std::chrono::steady_clock::now();
    if (running && memory) {
      bool incremental = !last_set.empty() && last_chain > 0 &&
                         (last_chain < kMaxChain || st.standby_flattens) && st.dumps == e2->dumps &&
                         st.generation == e2->generation &&
                         ::access(fmt::format("{}/img-{}", dir, st.serial).c_str(), F_OK) == 0;
      int serial = st.serial + 1;
      images_name = fmt::format("img-{}", serial);
      if (incremental)
        parent_name = fmt::format("img-{}", st.serial);
      s->flatten_expected = incremental && last_chain >= kMaxChain;
      std::string images = dir + "/" + images_name;
      (void)remove_tree(images);
      if (::mkdir(images.c_str(), 0700) < 0)
        return failf_errno("creating {}", images);
      new_images.path = images;
      staging.emplace(BH_TRY(snapshots_.stage(name, "replica")));
      UniqueFd upper = BH_TRY(open_directory(records_.paths(name).upper));
      // The worker asked for after the last round (its CRIU up by now), or a new one.
      const std::string parent_rel = parent_name.empty() ? "" : "../" + parent_name;
      std::optional<MonitorDump> prepared;
      if (e2->standing_dump) {
        prepared.emplace(std::move(*e2->standing_dump));
        e2->standing_dump.reset();
        const int64_t ready_start = steady_ms();
        Status r = prepared->ready();
        s->ahead_ready_ms = steady_ms() - ready_start;
        if (!r) {
          s->ahead_ready_ms = -1;
          fmt::print(stderr,
                     "bulkheadd: replicating {}: the worker started ahead is gone ({}); starting one\n", name,
                     r.error().text());
          prepared.reset();
        }
      }
      if (!prepared)
        prepared.emplace(BH_TRY(prepare_dump(*e2, images, false, parent_rel)));
      auto rt = runtime();
      wait_for_freeze_instant();
      Status paused = context(rt.pause(name), "freezing " + name + " for a replication round");
      urgent.reset();
      BH_CHECK(paused);
      t0 = std::chrono::steady_clock::now();
      s->freeze_start = steady_ms();
      frozen(s->freeze_start);
      s->captured_unix_ms = now_unix_ms();
      Status dumped = context(storage::copy_upper(upper.get(), staging->upper_fd(), nullptr, nullptr),
                              "copying the upper layer of " + name);
      const int64_t dump_start = steady_ms();
      s->pause_copy_ms = dump_start - s->freeze_start;
      if (dumped)
        dumped = dump_locked(*e2, lock, *prepared, false, images, parent_rel);
      s->pause_dump_ms = steady_ms() - dump_start;
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
      // The next round's worker, now: its CRIU starts while this set exports and streams, so the
      // next preparation is the staging alone (under TCG, CRIU's start was 0.5-1 s of each round's
      // 2 s on the replication thread). Its images are named at its go. Not for long intervals: an
      // idle worker and CRIU that long is not worth the start it saves.
      if (p.interval_ms <= kStandingDumpMaxIntervalMs) {
        if (auto next = MonitorDump::request(records_.paths(name).socket, dir, false); next)
          e2->standing_dump.emplace(std::move(*next));
      }
    } else {
      wait_for_freeze_instant();
      urgent.reset();                        // the copy below is ordinary work
      t0 = std::chrono::steady_clock::now(); // the pause is the freeze's, not the wait's
      s->freeze_start = steady_ms();
      frozen(s->freeze_start);
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

  // Step 5, on its own thread: this thread's next round (of this container or another) comes on
  // schedule meanwhile. The set before may still be on its way: this one follows it on the
  // channel, and only if it arrived (this one may be made against it); their results are applied
  // in order (apply_shipment).
  // This dump's pages are on their way: the next dump may be made against them.
  st.dumps = dumps_after;
  st.generation = generation_after;
  s->before = before;
  Shipment *raw = s.get();
  s->thread = std::thread([this, raw, before] {
    if (Status b = before ? before->wait() : Status{}; !b)
      raw->result = fail(
          fmt::format("the set before did not arrive ({}); this one was made against it", b.error().message),
          b.error().code);
    else
      raw->result = ship_set(*raw);
    raw->done.store(true);
    repl_cv_.notify_all();
  });
  new_images.path.clear(); // the shipment's now; removed when it fails (apply_shipment: chain 0)
  file_guard.path.clear();
  st.shipping = std::move(s);
  return {};
}

} // namespace bulkhead::daemon
