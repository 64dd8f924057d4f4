#include "daemon/cluster_control.hpp"

#include <algorithm>
#include <set>

#include <fmt/core.h>

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr auto kFirstRetry = std::chrono::seconds(1);
constexpr auto kMaxRetry = std::chrono::seconds(30);

} // namespace

ClusterControl::ClusterControl(const ClusterMember &member, ClusterHooks hooks)
    : member_(member), client_(member.client()), host_(member.host()), hooks_(std::move(hooks)),
      leader_(member.client(), member.host(), hooks_.event) {}

ClusterControl::~ClusterControl() { stop(); }

void ClusterControl::start() {
  thread_ = std::thread([this] { run(); });
}

void ClusterControl::stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void ClusterControl::run() {
  // A round every TTL/6 (at most 1 s): a dead host's containers move within the TTL plus two rounds.
  const auto tick = std::chrono::milliseconds(std::clamp<int64_t>(member_.ttl_s() * 1000 / 6, 100, 1000));
  std::string last_error; // logged once until it changes or etcd answers again
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    if (hooks_.each_round)
      hooks_.each_round();
    if (auto r = round(); !r) {
      if (r.error().text() != last_error)
        fmt::print(stderr, "bulkheadd: cluster: placement round (retrying; nothing acted on): {}\n",
                   r.error().text());
      last_error = r.error().text();
    } else {
      last_error.clear();
    }
    reap(false);
    lock.lock();
    wake_.wait_for(lock, tick, [this] { return quit_; });
  }
  lock.unlock();
  reap(true);
}

Status ClusterControl::round() {
  // The placements first, the local containers after: a create claims its placement only once its
  // entry exists, so a placement read here without a local container is not one being created.
  auto placements = BH_TRY(client_.list(kPlacementPrefix));
  BH_CHECK(sync(placements));
  const uint64_t before = leader_.failovers();
  BH_CHECK(leader_.tick(member_.lease()));
  if (leader_.failovers() == before)
    return {};
  // This leader just moved placements: when this host is their standby, its activation starts now
  // rather than a round later (recovery time is what failover is judged by).
  placements = BH_TRY(client_.list(kPlacementPrefix));
  return sync(placements);
}

Status ClusterControl::sync(const std::vector<std::pair<std::string, cluster::KeyValue>> &placements) {
  std::map<std::string, std::pair<Placement, const cluster::KeyValue *>> by_name;
  for (const auto &[key, kv] : placements)
    if (auto p = parse_placement(kv.value); p)
      by_name.emplace(key.substr(std::string(kPlacementPrefix).size()), std::make_pair(std::move(*p), &kv));
  std::set<std::string> local;
  for (const auto &c : hooks_.containers()) {
    local.insert(c.name);
    if (c.busy || activating(c.name))
      continue;
    const std::string key = kPlacementPrefix + c.name;
    auto it = by_name.find(c.name);
    if (it == by_name.end()) {
      // A fenced container never claims: its owner may have been destroyed on purpose.
      if (c.fenced_by.empty())
        BH_TRY(client_.create_if_absent(key, owned_placement(host_, c, nullptr).dump()));
      continue;
    }
    const auto &[p, kv] = it->second;
    if (p.host != host_) {
      if (c.fenced_by != p.host) {
        fmt::print(stderr, "bulkheadd: cluster: {} is placed on {} (epoch {}{}): fencing the copy here\n",
                   c.name, p.host, p.epoch,
                   p.failed_over_from.empty() ? "" : ", failed over from " + p.failed_over_from);
        hooks_.fence(c.name, p.host);
      }
      continue;
    }
    if (!c.fenced_by.empty()) {
      fmt::print(stderr, "bulkheadd: cluster: {} is placed on this host again: no longer fenced\n", c.name);
      hooks_.unfence(c.name);
    }
    Placement want = owned_placement(host_, c, &p);
    if (want.dump() != p.dump())
      BH_TRY(client_.put_if({{key, kv->mod_revision}}, key, want.dump()));
  }
  std::set<std::string> wanted;
  for (const auto &[name, entry] : by_name) {
    const auto &[p, kv] = entry;
    if (p.host != host_ || local.count(name))
      continue;
    if (!p.failed_over_from.empty() && !p.lost) {
      wanted.insert(name);
      maybe_activate(name);
    } else if (!activating(name)) {
      // Ours, not here, not a failover: its container was destroyed while etcd could not be told.
      const std::string key = kPlacementPrefix + name;
      if (BH_TRY(client_.remove_if({{key, kv->mod_revision}}, key)))
        fmt::print(stderr, "bulkheadd: cluster: removed the placement of {} (no such container here)\n",
                   name);
    }
  }
  // Forget the backoff of what no longer waits for activation here (moved, or it exists now).
  for (auto it = activations_.begin(); it != activations_.end();)
    it = !wanted.count(it->first) && !it->second->thread.joinable() ? activations_.erase(it) : std::next(it);
  return {};
}

bool ClusterControl::activating(const std::string &name) const {
  auto it = activations_.find(name);
  return it != activations_.end() && it->second->thread.joinable();
}

void ClusterControl::maybe_activate(const std::string &name) {
  auto &slot = activations_[name];
  if (!slot)
    slot = std::make_unique<Activation>();
  Activation &a = *slot;
  if (a.thread.joinable() || std::chrono::steady_clock::now() < a.next)
    return; // under way, or waiting for its next attempt
  a.done = false;
  a.thread = std::thread([this, name, &a] { activate(name, a); });
}

// Runs on an activation's own thread: a restore may take seconds, and neither the placement rounds
// nor the leader's may wait for it.
void ClusterControl::activate(const std::string &name, Activation &a) {
  auto r = hooks_.activate(name);
  a.ok = static_cast<bool>(r);
  if (r) {
    fmt::print(stderr, "bulkheadd: cluster: {} activated here from its replica\n", name);
    hooks_.event("container-activated", name, {{"host", host_}});
  } else {
    std::string text = r.error().text();
    fmt::print(stderr, "bulkheadd: cluster: activating {} here failed (attempt {}): {}\n", name,
               a.failures + 1, text);
    hooks_.event("container-activation-failed", name, {{"error", text}, {"attempt", a.failures + 1}});
    // Published in its placement, so `cluster list` on any host shows why it does not run.
    const std::string key = kPlacementPrefix + name;
    if (auto cur = client_.get(key); cur && *cur) {
      if (auto p = parse_placement((*cur)->value); p && p->host == host_) {
        p->error = text;
        p->attempts++;
        (void)client_.put_if({{key, (*cur)->mod_revision}}, key, p->dump());
      }
    }
  }
  a.done = true;
}

void ClusterControl::reap(bool wait) {
  for (auto it = activations_.begin(); it != activations_.end();) {
    Activation &a = *it->second;
    if (a.thread.joinable() && (wait || a.done)) {
      a.thread.join();
      if (a.ok) {
        it = activations_.erase(it);
        continue;
      }
      a.failures++;
      auto delay = std::min<std::chrono::steady_clock::duration>(
          kFirstRetry * (1 << std::min(a.failures - 1, 5)), kMaxRetry);
      a.next = std::chrono::steady_clock::now() + delay;
    }
    ++it;
  }
}

} // namespace bulkhead::daemon
