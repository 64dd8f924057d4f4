// Membership of an etcd-backed cluster (issue 14, docs/cluster.md "Hosts in the cluster"): the host
// holds an etcd lease that one thread of its own keeps alive, and publishes under it its host
// record and its containers' states. A host whose lease expires is dead: etcd deletes its keys.
//
// Containers never depend on etcd: when it is unreachable the thread only logs and retries, and
// nothing else in the daemon waits for it. Nothing here forks (the daemon is multithreaded).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/etcd_client.hpp"

namespace bulkhead::daemon {

// Seconds a host stays listed after its last keep-alive (the default of --cluster-ttl). Short enough
// that a crashed host is declared dead within seconds; long enough that a keep-alive every TTL/3
// survives two lost or slow (2 s timeout) refreshes in a row before the host is declared dead.
inline constexpr int64_t kLeaseTtlS = 10;

inline constexpr const char *kHostsPrefix = "/bulkhead/hosts/";
inline constexpr const char *kContainersPrefix = "/bulkhead/containers/";
// GET /1.0/cluster (daemon/cluster_view.cpp): {"enabled": true, "host", "leader", "hosts": [{"name",
// "address", "state": online|evacuating|offline|stopped, "started_unix", "containers": [{"name",
// "state"}]}], "placements": [{"name", "host", "standby", ...}]}, read from etcd.
Result<nlohmann::json> cluster_view(const cluster::EtcdClient &client, const std::string &self);

class ClusterMember {
public:
  // containers(): this host's containers as {NAME: STATE}; called from the member's thread, so it
  // must not block for long (the daemon answers from what it can read without waiting on a lock).
  // host_state(): "online", or "evacuating" while the host's containers move away (published as
  // the host record's "state" within a second of a change).
  // ttl_s: the lease's TTL (--cluster-ttl); the keep-alive goes every ttl_s/3.
  ClusterMember(cluster::EtcdClient client, std::string host, std::string address, int64_t ttl_s,
                std::function<std::map<std::string, std::string>()> containers,
                std::function<std::string()> host_state);
  ~ClusterMember();

  // Registers now (lease, /bulkhead/hosts/NAME, /bulkhead/members/NAME): the daemon's start with
  // --cluster fails when etcd cannot be reached, since it must read the placements before it may
  // run anything (fencing).
  Status join();
  // Starts the thread that keeps the lease alive (registering again when it expired) and publishes
  // the containers. An unreachable etcd is retried in the background.
  void start();
  // Ends the thread, marks the member "stopped" (a planned stop: no failover of its containers,
  // which run on under their monitors) and revokes the lease (the host's keys vanish at once).
  void stop();
  // The lease the host's keys live under now; 0 while not registered (lost, not yet renewed).
  int64_t lease() const { return current_lease_; }
  // Until when (steady clock, ms) the lease is surely alive at etcd: the sending time of the last
  // grant or refresh etcd answered, plus the TTL it granted. etcd renewed it at or after that send,
  // so its expiry is never earlier; past this instant the host must assume it is declared dead
  // (daemon/self_fence.hpp). No wall clock: etcd's own TTL runs on its clock, and only durations
  // of seconds are compared.
  int64_t lease_valid_until_ms() const { return valid_until_ms_; }
  int64_t ttl_s() const { return ttl_s_; }
  const cluster::EtcdClient &client() const { return client_; }
  const std::string &host() const { return host_; }

private:
  void run();
  Status register_host();          // a fresh lease and the host's key
  Status put_host(int64_t lease);  // the host record with its current state
  Status put_member(bool stopped); // the lease-less record that outlives the host
  Status publish_containers();     // puts changed containers, removes those gone

  cluster::EtcdClient client_;
  std::string host_, address_;
  int64_t ttl_s_ = kLeaseTtlS;
  int64_t granted_ttl_s_ = 0; // what etcd granted (it may raise a TTL below its minimum)
  std::function<std::map<std::string, std::string>()> containers_;
  std::function<std::string()> host_state_;
  std::string published_state_; // the host record's state in etcd (the thread's)
  int64_t started_unix_ = 0;
  int64_t lease_ = 0;                            // the thread's; 0: not registered
  std::map<std::string, std::string> published_; // what etcd holds under this lease (the thread's)
  std::atomic<int64_t> current_lease_{0};        // for stop(), after the thread ended
  std::atomic<int64_t> valid_until_ms_{0};       // see lease_valid_until_ms()
  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false; // guarded by mu_
  std::thread thread_;
};

} // namespace bulkhead::daemon
