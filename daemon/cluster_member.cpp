#include "daemon/cluster_member.hpp"

#include <ctime>

#include <fmt/core.h>

namespace bulkhead::daemon {

using nlohmann::json;

ClusterMember::ClusterMember(cluster::EtcdClient client, std::string host, std::string address,
                             std::function<std::map<std::string, std::string>()> containers,
                             std::function<std::string()> host_state)
    : client_(std::move(client)), host_(std::move(host)), address_(std::move(address)),
      containers_(std::move(containers)), host_state_(std::move(host_state)),
      started_unix_(static_cast<int64_t>(std::time(nullptr))) {}

ClusterMember::~ClusterMember() { stop(); }

void ClusterMember::start() {
  thread_ = std::thread([this] { run(); });
}

void ClusterMember::stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  if (!thread_.joinable())
    return;
  thread_.join();
  if (int64_t lease = current_lease_.exchange(0); lease != 0) {
    if (auto r = client_.revoke_lease(lease); !r)
      fmt::print(stderr,
                 "bulkheadd: cluster: revoking lease {} at shutdown: {} (the host's keys vanish when "
                 "it expires)\n",
                 lease, r.error().text());
  }
}

Status ClusterMember::register_host() {
  int64_t lease = BH_TRY(client_.grant_lease(kLeaseTtlS));
  if (auto r = put_host(lease); !r) {
    (void)client_.revoke_lease(lease);
    return r;
  }
  lease_ = lease;
  current_lease_ = lease;
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
  // Container states are refreshed on every tick; the lease is refreshed every kLeaseTtlS/3.
  constexpr auto kTick = std::chrono::seconds(1);
  constexpr auto kKeepAliveEvery = std::chrono::seconds(kLeaseTtlS / 3);
  auto last_keep_alive = std::chrono::steady_clock::now();
  bool warned = false; // log an unreachable etcd once until it answers again
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    if (lease_ == 0) {
      if (auto r = register_host(); r) {
        fmt::print(stderr, "bulkheadd: cluster: joined as {} (lease {:x}, TTL {} s)\n", host_, lease_,
                   kLeaseTtlS);
        last_keep_alive = std::chrono::steady_clock::now();
        warned = false;
      } else if (!warned) {
        fmt::print(stderr,
                   "bulkheadd: cluster: cannot register with etcd (retrying every second; containers "
                   "are not affected): {}\n",
                   r.error().text());
        warned = true;
      }
    } else if (std::chrono::steady_clock::now() - last_keep_alive >= kKeepAliveEvery) {
      if (auto r = client_.keep_alive(lease_); r) {
        last_keep_alive = std::chrono::steady_clock::now();
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
    wake_.wait_for(lock, kTick, [this] { return quit_; });
  }
}

Result<json> ClusterMember::view() const {
  auto hosts = BH_TRY(client_.list(kHostsPrefix));
  auto containers = BH_TRY(client_.list(kContainersPrefix));
  // HOST/NAME -> state
  std::map<std::string, json> by_host;
  for (const auto &[key, kv] : containers) {
    std::string rest = key.substr(std::string(kContainersPrefix).size());
    auto slash = rest.find('/');
    if (slash == std::string::npos)
      continue;
    auto value = json::parse(kv.value, nullptr, false);
    std::string state = value.is_object() ? value.value("state", std::string("unknown")) : "unknown";
    by_host[rest.substr(0, slash)].push_back({{"name", rest.substr(slash + 1)}, {"state", state}});
  }
  json out = {{"enabled", true}, {"host", host_}, {"hosts", json::array()}};
  for (const auto &[key, kv] : hosts) {
    auto value = json::parse(kv.value, nullptr, false);
    if (!value.is_object())
      continue; // not ours: skip rather than fail the whole listing
    std::string name = key.substr(std::string(kHostsPrefix).size());
    json h = {{"name", name},
              {"address", value.value("address", std::string())},
              {"state", value.value("state", std::string("online"))},
              {"started_unix", value.value("started_unix", int64_t{0})},
              {"containers", by_host.count(name) ? by_host[name] : json::array()}};
    out["hosts"].push_back(std::move(h));
  }
  return out;
}

} // namespace bulkhead::daemon
