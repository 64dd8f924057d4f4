// Step 5 of a replication round (daemon/replicator.cpp has the table and the process model): a
// captured set's stream to the standby, on a thread of its own, and what the source learns from
// its end (apply_shipment, on the replicator's thread).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "daemon/peer_file_sender.hpp"
#include "daemon/peer_server.hpp"
#include "daemon/replication_state.hpp"

namespace bulkhead::daemon {

using nlohmann::json;
using namespace replication;

Status Daemon::Shipment::wait() {
  std::lock_guard lock(join_mu);
  if (thread.joinable())
    thread.join();
  return result;
}

Daemon::Shipment::~Shipment() { (void)wait(); }

size_t Daemon::Replication::sets_in_flight() const {
  size_t n = 0;
  for (const Shipment *s = shipping.get(); s; s = s->before.get())
    ++n;
  return n;
}

bool Daemon::Replication::oldest_arrived() const {
  const Shipment *s = shipping.get();
  while (s && s->before)
    s = s->before.get();
  return s && s->done.load();
}

// The oldest set on its way alone (waiting for it if it is still streaming); the newer ones stay
// linked to what is left. Their threads hold the set before them themselves: unlinking it here
// changes nothing for them.
Status Daemon::apply_oldest_shipment(Replication &st) {
  if (!st.shipping || !st.shipping->before)
    return apply_shipment(st);
  Shipment *next = st.shipping.get();
  while (next->before->before)
    next = next->before.get();
  std::shared_ptr<Shipment> newest = std::exchange(st.shipping, std::exchange(next->before, nullptr));
  Status r = apply_shipment(st);
  st.shipping = std::move(newest);
  return r;
}

// A set that reached the standby (or did not): what the source knows from now on.
Status Daemon::apply_shipment(Replication &st) {
  std::shared_ptr<Shipment> shipped = std::move(st.shipping);
  if (shipped->before) {
    // The set before it first: the standby took them in that order, or this one not at all.
    st.shipping = std::exchange(shipped->before, nullptr);
    if (Status b = apply_shipment(st); !b) {
      (void)shipped->wait(); // it sent nothing: it ended when the set before failed
      st.chain = 0;
      return fail(
          fmt::format("{}; the set made after it was against it and is dropped too", b.error().message),
          b.error().code);
    }
  }
  Shipment &s = *shipped;
  Status r = s.wait();
  if (!r) {
    st.set_failed(r.error());
    st.chain = 0; // the standby never got this set: the next dump is a full one
    return r;
  }
  // The standby holds the new set: the chain moves on, the images it no longer needs go (those
  // of a capture made after this one, numbered higher, stay).
  st.last_set = s.set_id;
  // A standby that flattens answers a chain of at most kMaxChain; a longer one could not flatten
  // (images it does not understand): the next dump is a full set, as with an older standby.
  st.standby_flattens = s.standby_chain > 0 && s.standby_chain <= kMaxChain;
  st.chain = s.images_name.empty() ? 0 : s.standby_chain > 0 ? s.standby_chain : s.prev_chain + 1;
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
    // A directory whose parent went (the standby flattened its chain) is a base here: CRIU's
    // next dump reads only its parent's pagemap, and a dangling link would make it open none.
    for (const auto &f : std::filesystem::directory_iterator(s.dir, ec)) {
      const std::string link = f.path().string() + "/parent";
      struct stat sb {};
      if (f.path().filename().string().rfind("img-", 0) == 0 && ::lstat(link.c_str(), &sb) == 0 &&
          ::stat(link.c_str(), &sb) != 0)
        ::unlink(link.c_str());
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
  // The checkpoint itself, freeze to commit (the phases above and the bookkeeping between them),
  // and how late the freeze came on its schedule: the loss window's worst case is the interval
  // plus the one, as long as the other is 0.
  st.last_round_ms["checkpoint"] = s.commit_end - s.freeze_start;
  if (s.freeze_due > 0)
    st.last_round_ms["late"] = std::max<int64_t>(0, s.freeze_start - s.freeze_due);
  // What the preparation waited for (part of `check` and `before_freeze`): shown when it waited.
  if (s.oldest_wait_ms > 0)
    st.last_round_ms["oldest_wait"] = s.oldest_wait_ms;
  if (s.lock_wait_ms > 0)
    st.last_round_ms["lock_wait"] = s.lock_wait_ms;
  if (s.ahead_ready_ms >= 0) // part of `before_freeze`
    st.last_round_ms["ahead_ready"] = s.ahead_ready_ms;
  if (s.pause_dump_ms > 0) { // parts of `pause`
    st.last_round_ms["pause_copy"] = s.pause_copy_ms;
    st.last_round_ms["pause_dump"] = s.pause_dump_ms;
  }
  if (s.standby_flatten_ms > 0) // part of the stream phase: the standby's begin answers after it
    st.last_round_ms["standby_flatten"] = s.standby_flatten_ms;
  // The commit before this one to this one: the interval when a round fits in it, the round's
  // length when it does not (the loss window's worst case is this plus a checkpoint).
  if (previous_sync_ms != 0)
    st.last_round_ms["period"] = st.last_sync_ms - previous_sync_ms;
  // The work lost had the host died just before this commit: the standby's newest state was the
  // set before's freeze. The bound is the interval plus one checkpoint (freeze to commit).
  if (st.last_freeze_ms != 0)
    st.last_round_ms["exposure"] = s.commit_end - st.last_freeze_ms;
  st.last_freeze_ms = s.freeze_start;
  nlohmann::json round = st.last_round_ms;
  round["sync"] = st.syncs;
  round["bytes"] = s.sent;
  round["chain"] = st.chain;
  st.recent_rounds.push_back(std::move(round));
  if (st.recent_rounds.size() > kRecentRounds)
    st.recent_rounds.pop_front();
  st.set_ok();
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
  // (A standby that flattens its chain in this begin answers after the copy of the container's
  // memory: seconds under TCG.)
  conn->set_timeout(s.known && !s.flatten_expected ? kConnectTimeoutS : kTransferTimeoutS);
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
  PeerFileSender send(*conn, *s.sum, [&](const Error &err) { return from_remote(s.remote, s.where, err); });
  BH_CHECK(send.file(s.file, {{"op", "replica.file"}, {"part", "export"}}));
  if (!s.images_name.empty())
    BH_CHECK(send.directory(s.dir + "/" + s.images_name, {{"op", "replica.file"}, {"part", "image"}}));
  s.sent = send.sent();
  s.commit_start = steady_ms();
  auto commit =
      conn->request({{"op", "replica.commit"}, {"bytes", s.sent}, {s.sum->algorithm(), s.sum->hex_digest()}});
  if (!commit)
    return tl::unexpected(from_remote(s.remote, s.where, commit.error()));
  s.commit_end = steady_ms();
  s.standby_chain = commit->header.value("chain", -1);
  s.standby_flatten_ms = commit->header.value("flatten_ms", int64_t{0});
  drop.keep = true;
  s.cipher = conn->cipher();
  s.channel_serial = channel.serial;
  return {};
}

} // namespace bulkhead::daemon
