// The source side of continuous replication, shared by daemon/replicator.cpp (the schedule and
// the capture of a set) and daemon/replica_shipment.cpp (its stream to the standby, on a thread
// of its own): what the source knows of each protected container, the connection per standby,
// and a set on its way. The process model is in replicator.cpp's header comment.
#pragma once

#include "daemon/steady_clock.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"
#include "storage/stream_checksum.hpp"

namespace bulkhead::daemon {

namespace replication {

constexpr int kConnectTimeoutS = 3;
constexpr int kTransferTimeoutS = 120;
constexpr int64_t kMinIntervalMs = 1000;
constexpr int64_t kMaxIntervalMs = int64_t{24} * 3600 * 1000;
constexpr int64_t kDefaultIntervalMs = 2000;
// How late the replicator may wake for a round and still keep the schedule (condition variable
// and scheduler latency; in the TCG VM a few ms).
constexpr int64_t kWakeToleranceMs = 50;
// The preparation lead: the longest of the last kPrepareHistory preparations plus this margin, at
// most kMaxLeadMs (and half the interval: the replication thread's share of a round, its
// preparation and the freeze, has to fit in one interval anyway; a quarter, before, cut the lead
// below the 0.5-0.9 s preparations of a 2 s round under TCG and made those freezes 0.2-0.4 s
// late). The longest, not the last: under load a
// preparation varies by hundreds of ms from one round to the next (the failover bench saw
// 150-500 ms in the VM), and one longer than the lead makes its freeze that much late.
// With a margin of 40 ms over the longest of 4, the failover bench saw freezes 30-90 ms late
// several times a minute (a preparation a little longer than the recent ones). The wait holds
// the container's lock, as the preparation does: 110 ms more per round on top of 0.3-0.9 s.
constexpr int64_t kLeadMarginMs = 150;
constexpr int64_t kMaxLeadMs = 1000;
constexpr size_t kPrepareHistory = 8;
// How many committed rounds info's replication.recent_rounds keeps (each: last_round_ms of that
// round, its sync number, bytes and chain): a poller that misses rounds (a benchmark, an operator
// looking at a spike) still sees each of them.
constexpr size_t kRecentRounds = 16;
inline int64_t preparation_lead(int64_t longest_prepare_ms, int64_t interval_ms) {
  return std::min({longest_prepare_ms + kLeadMarginMs, kMaxLeadMs, interval_ms / 2});
}
// The next freeze is scheduled one interval after the last one came, less this slack: the
// longest of the last kPrepareHistory wake-ups (how late a freeze came on an instant it waited
// for: the timer's wake and the cgroup freeze, 2-15 ms in the TCG VM) plus kWakeSlackMarginMs,
// at least kMinWakeSlackMs (a schedule's first rounds have one or two wake-ups to go by: the
// failover bench saw a slack of 6 ms learned from one wake of 4, and the next wake of 11), at
// most kMaxWakeSlackMs and a fortieth of the interval. Scheduled on the instants alone
// (instant + interval), each freeze's wake jitter added to the gap since the one before, and
// that gap is the loss window's first term: a round whose freeze woke 5 ms later than the one
// before exposed the interval + 5 ms + its checkpoint. With the slack, two freezes are at most
// one interval apart as long as a wake is no later than the slack; the cost is rounds that
// come up to 1% more often (20 ms in 2 s).
constexpr int64_t kWakeSlackMarginMs = 5;
constexpr int64_t kMinWakeSlackMs = 20;
constexpr int64_t kMaxWakeSlackMs = 50;
inline int64_t wake_slack(int64_t longest_wake_ms, int64_t interval_ms) {
  return std::min(
      {std::max(longest_wake_ms + kWakeSlackMarginMs, kMinWakeSlackMs), kMaxWakeSlackMs, interval_ms / 40});
}
// A memory chain (a full dump, then dumps of the pages changed since the one before) this long
// is flattened by the standby when the next set begins (its newest directory made to hold every
// page, the older ones removed: migration/criu_image_flatten.hpp), and the source keeps only the
// parent its next dump needs. A standby that does not flatten (an older version: its commit
// answers no "chain") has its chain cut by a full set after this many instead.
constexpr int kMaxChain = 8;
// The standby starts flattening a chain this long in the background, after the set's commit, and
// takes the result into the first set that begins after it is ready (daemon/replica_flattening.cpp):
// kMaxChain - kFlattenAheadChain sets of time for the copy before a begin has to wait for it.
constexpr int kFlattenAheadChain = 5;
// How many sets of one container may be on their way at once; a capture beyond that waits for
// the oldest. Each holds its image directory and its archive on the source. Two, before, made
// the freeze after a set whose checkpoint outlasted about two intervals less the lead wait for
// it: in the VM at 256 MiB / 2 s, with the standby flattening beside it, 0.15-1.4 s late.
constexpr size_t kMaxSetsInFlight = 3;
// Up to this interval a round asks for the next round's checkpoint worker right after its freeze
// (Entry::standing_dump): CRIU's start is then off the next round's path.
constexpr int64_t kStandingDumpMaxIntervalMs = 60 * 1000;

// The largest of the last kPrepareHistory values noted (0 before any): the preparation lead and
// the wake slack each go by one.
struct RecentMax {
  std::array<int64_t, kPrepareHistory> values{};
  size_t next = 0;
  void note(int64_t v) {
    values[next] = v;
    next = (next + 1) % values.size();
  }
  int64_t longest() const { return *std::max_element(values.begin(), values.end()); }
};

using ::bulkhead::daemon::steady_ms;

// Removes a directory tree or a file when it goes out of scope, unless released.
struct PathGuard {
  std::string path;
  ~PathGuard() {
    if (!path.empty())
      (void)remove_tree(path);
  }
};

// replica.check (step 1): the standby answers whether it can hold NAME (and which set it holds).
inline nlohmann::json replica_check_request(const std::string &name, const ContainerConfig &config,
                                            const std::string &mode) {
  nlohmann::json networks = nlohmann::json::array();
  for (const auto &n : config.nets)
    networks.push_back(n.network);
  return {{"op", "replica.check"},
          {"name", name},
          {"template", config.template_name},
          {"networks", networks},
          {"mode", mode}};
}

// A refusal comes as "ADDR: message" (PeerConnection::request); anything else is a connection
// that broke or timed out: an unreachable standby.
inline Error from_remote(const Remote &remote, const std::string &where, const Error &err) {
  std::string msg = err.message;
  bool refused = msg.rfind(remote.address + ": ", 0) == 0;
  if (refused)
    msg.erase(0, remote.address.size() + 2);
  return Error{refused ? EREMOTE : EHOSTUNREACH, where + ": " + msg};
}

// Not a refusal ("ADDR: message") and not a silence: the peer closed its end.
inline bool closed_meanwhile(const Remote &remote, const Error &err) {
  return err.code != ETIMEDOUT && err.message.rfind(remote.address + ": ", 0) != 0;
}

inline void log_round_failure(const std::string &name, const std::string &standby, const Error &err,
                              int64_t interval_ms) {
  fmt::print(stderr, "bulkheadd: replicating {} to {}: {} (retried in {} ms)\n", name, standby, err.text(),
             interval_ms);
}

} // namespace replication

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
  int serial = 0;                // the last image directory's number (img-SERIAL)
  int chain = 0;                 // image directories in the standby's set (0: a disk set)
  bool standby_flattens = false; // its last commit said its chain (it flattens a long one)
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
  std::deque<nlohmann::json> recent_rounds; // the last kRecentRounds committed, oldest first
  // The freeze of the last committed set (steady clock): the next commit's "exposure".
  int64_t last_freeze_ms = 0;
  // How long the last captures took to be ready to freeze, from the replicator's turn that ran
  // them (the turn's own work, the check, the staging, CRIU's start):
  // the next round starts the longest of them (and a margin) before its scheduled freeze, and
  // waits for the instant, so that freezes are one interval apart whatever the preparation took.
  replication::RecentMax preparations;
  // How late the last freezes came on instants they waited for (replication::wake_slack).
  replication::RecentMax wake_ups;
  // The freeze of the round that just ran (0: it froze nothing): the next one's schedule.
  int64_t round_freeze_ms = 0;
  // The last captured set while it streams to the standby (null once its result is applied),
  // linked through Shipment::before to the older ones still on their way (kMaxSetsInFlight).
  std::shared_ptr<Shipment> shipping;
  size_t sets_in_flight() const;
  bool oldest_arrived() const; // the oldest set on its way has arrived (or failed)

  void set_ok() {
    state = "ok";
    error.clear();
    lag_bytes = 0;
  }
  // A round or a set that failed, as info shows it: by the error's kind.
  void set_failed(const Error &err) {
    state = err.code == EHOSTUNREACH ? "standby unreachable" : err.code == EREMOTE ? "refused" : "failed";
    error = err.text();
  }
};

// One captured set on its way to the standby: step 5 of a round, on a thread of its own, so the
// next round's freeze comes on schedule while it streams. Everything it needs is copied in; it
// touches only its channel (which carries one set at a time) and its own results.
struct Daemon::Shipment {
  std::string name, mode, state, where, sig;
  Remote remote;
  ContainerConfig config;
  bool known = false;            // no replica.check on this connection (see Replication::committed_on)
  bool flatten_expected = false; // the standby's chain is long: its begin flattens it first
  bool running = false;          // the container's state at the capture
  std::string dir, file, images_name, parent_name, set_id, parent_set;
  int serial = 0, prev_chain = 0;
  int64_t captured_unix_ms = 0, round_start = 0, capture_start = 0, freeze_start = 0, export_start = 0,
          pause_ms = 0;
  int64_t freeze_due = 0; // the scheduled instant of its freeze (0: the first of a schedule)
  // Parts of its preparation that wait on others: for the oldest set in flight (kMaxSetsInFlight),
  // and for the container's lock.
  int64_t oldest_wait_ms = 0, lock_wait_ms = 0;
  // The pause's parts (memory mode): the upper layer's copy, and the dump (the go to the checkpoint
  // worker's answer: its reading of the container's state, CRIU's dump, the worker's exit).
  int64_t pause_copy_ms = 0, pause_dump_ms = 0;
  // The dump's worker was started ahead, after the round before (Entry::standing_dump): how long
  // its readiness was waited for. -1: started in this round's preparation.
  int64_t ahead_ready_ms = -1;
  std::optional<storage::StreamChecksum> sum;
  std::shared_ptr<ReplicaChannel> channel;
  // The set before, still on its way when this one was captured: this one's thread sends only
  // after it arrived, and apply_shipment applies it first (null once applied). At most
  // kMaxSetsInFlight in one such chain.
  std::shared_ptr<Shipment> before;
  // Results, read after `done` (or wait()).
  Status result;
  uint64_t sent = 0, channel_serial = 0;
  int64_t stream_start = 0, commit_start = 0, commit_end = 0;
  // The standby's chain with this set and its flattening time (-1: a standby that does not say).
  int standby_chain = -1;
  int64_t standby_flatten_ms = 0;
  std::string cipher;
  std::atomic<bool> done{false};
  std::thread thread;
  std::mutex join_mu;
  Status wait(); // joins the thread (once, from any thread) and returns its result
  ~Shipment();
};

} // namespace bulkhead::daemon
