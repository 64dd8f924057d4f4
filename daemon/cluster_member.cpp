#include "daemon/cluster_member.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "daemon/cluster_placement.hpp"
#include "daemon/steady_clock.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {
constexpr auto kJoinPatience = std::chrono::seconds(10);
} // namespace

ClusterMember::ClusterMember(cluster::EtcdClient client, std::string host, std::string address, int64_t ttl_s,
                             std::function<std::map<std::string, std::string>()> containers,
                             std::function<std::string()> host_state)
    : client_(std::move(client)), host_(std::move(host)), address_(std::move(address)), ttl_s_(ttl_s),
      containers_(std::move(containers)), host_state_(std::move(host_state)),
      started_unix_(static_cast<int64_t>(std::time(nullptr))) {}

ClusterMember::~ClusterMember() { stop(); }

Status ClusterMember::join() {
  // etcd that refuses is a clear error at once; etcd that is slow to answer (a loaded machine, an
  // election under way) is given a few seconds more before the daemon gives up.
  const auto deadline = std::chrono::steady_clock::now() + kJoinPatience;
  for (;;) {
    auto r = register_host();
    if (r)
      break;
    if (r.error().code != ETIMEDOUT || std::chrono::steady_clock::now() >= deadline)
      return fail(fmt::format("joining the cluster at {}: {}", fmt::join(client_.endpoints(), ","),
                              r.error().message),
                  r.error().code);
    fmt::print(stderr, "bulkheadd: cluster: joining: {} (retrying)\n", r.error().message);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  fmt::print(stderr, "bulkheadd: cluster: joined as {} (lease {:x}, TTL {} s)\n", host_, lease_,
             granted_ttl_s_);
  return {};
}

void ClusterMember::start() {
  thread_ = std::thread([this] { run(); });
}

void ClusterMember::stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
  // Also after a join() whose start() never came (the daemon's start failed later): leave cleanly.
  if (int64_t lease = current_lease_.exchange(0); lease != 0) {
    // Before the lease goes: the leader must read this host as stopped on purpose, not dead.
    if (auto r = put_member(true); !r)
      fmt::print(stderr, "bulkheadd: cluster: marking {} stopped: {} (it will read as offline)\n", host_,
                 r.error().text());
    if (auto r = client_.revoke_lease(lease); !r)
      fmt::print(stderr,
                 "bulkheadd: cluster: revoking lease {} at shutdown: {} (the host's keys vanish when "
                 "it expires)\n",
                 lease, r.error().text());
  }
}

Status ClusterMember::register_host() {
  int64_t granted = ttl_s_;
  const int64_t sent_ms = steady_ms();
  int64_t lease = BH_TRY(client_.grant_lease(ttl_s_, &granted));
  if (granted != ttl_s_ && granted != granted_ttl_s_)
    fmt::print(stderr,
               "bulkheadd: cluster: warning: etcd granted a lease TTL of {} s, not the --cluster-ttl of {} s "
               "(its minimum is 1.5x its --election-timeout): this host is declared dead {} s after it "
               "stops\n",
               granted, ttl_s_, granted);
  granted_ttl_s_ = granted;
  if (auto r = put_host(lease); !r) {
    (void)client_.revoke_lease(lease);
    return r;
  }
  if (auto r = put_member(false); !r) {
    (void)client_.revoke_lease(lease);
    return r;
  }
  lease_ = lease;
  current_lease_ = lease;
  valid_until_ms_ = sent_ms + granted * 1000;
  published_.clear(); // the keys of an expired lease are gone: publish every container again
  return {};
}

Status ClusterMember::put_host(int64_t lease) {
  std::string state = host_state_();
  json rec = {{"name", host_}, {"address", address_}, {"state", state}, {"started_unix", started_unix_}};
  BH_CHECK(client_.put(kHostsPrefix + host_, rec.dump(), lease));
  published_state_ = state;
  return {};
}

Status ClusterMember::put_member(bool stopped) {
  json rec = {{"name", host_}, {"address", address_}, {"joined_unix", started_unix_}};
  if (stopped)
    rec["stopped_unix"] = static_cast<int64_t>(std::time(nullptr));
  return client_.put(kMembersPrefix + host_, rec.dump());
}

Status ClusterMember::publish_containers() {
  if (host_state_() != published_state_)
    BH_CHECK(put_host(lease_));
  auto now = containers_();
  const std::string prefix = kContainersPrefix + host_ + "/";
  for (const auto &[name, state] : now) {
    auto old = published_.find(name);
    if (old != published_.end() && old->second == state)
      continue;
    BH_CHECK(client_.put(prefix + name, json{{"state", state}}.dump(), lease_));
    published_[name] = state;
  }
  for (auto it = published_.begin(); it != published_.end();) {
    if (now.count(it->first)) {
      ++it;
      continue;
    }
    BH_TRY(client_.remove(prefix + it->first));
    it = published_.erase(it);
  }
  return {};
}

void ClusterMember::run() {
  // Container states are refreshed on every tick; the lease is refreshed every TTL/3, the tick
  // being short enough that the refresh is never more than a sixth of the TTL late.
  const auto keep_alive_every = std::chrono::milliseconds(ttl_s_ * 1000 / 3);
  const auto tick = std::chrono::milliseconds(std::clamp<int64_t>(ttl_s_ * 1000 / 6, 100, 1000));
  auto last_keep_alive = std::chrono::steady_clock::now();
  bool warned = false; // log an unreachable etcd once until it answers again
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    if (lease_ == 0) {
      if (auto r = register_host(); r) {
        fmt::print(stderr, "bulkheadd: cluster: joined as {} (lease {:x}, TTL {} s)\n", host_, lease_,
                   granted_ttl_s_);
        last_keep_alive = std::chrono::steady_clock::now();
        warned = false;
      } else if (!warned) {
        fmt::print(stderr,
                   "bulkheadd: cluster: cannot register with etcd (retrying every second; containers "
                   "are not affected): {}\n",
                   r.error().text());
        warned = true;
      }
    } else if (std::chrono::steady_clock::now() - last_keep_alive >= keep_alive_every) {
      const int64_t sent_ms = steady_ms();
      if (auto r = client_.keep_alive(lease_); r) {
        last_keep_alive = std::chrono::steady_clock::now();
        valid_until_ms_ = sent_ms + *r * 1000; // the TTL etcd reports for the refreshed lease
      } else {
        // Expired (etcd considered this host dead and deleted its keys) or etcd unreachable for
        // longer than the TTL allows: either way, register again with a fresh lease.
        fmt::print(stderr, "bulkheadd: cluster: lease {:x} lost, registering again: {}\n", lease_,
                   r.error().text());
        lease_ = 0;
        current_lease_ = 0;
      }
    }
    if (lease_ != 0) {
      if (auto r = publish_containers(); !r)
        fmt::print(stderr, "bulkheadd: cluster: publishing container states: {}\n", r.error().text());
    }
    lock.lock();
    wake_.wait_for(lock, tick, [this] { return quit_; });
  }
}

} // namespace bulkhead::daemon
