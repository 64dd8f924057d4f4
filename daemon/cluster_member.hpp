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

// Seconds a host stays listed after its last keep-alive. Short enough that `cluster list` shows a
// crashed host as gone within seconds; long enough that a keep-alive every kLeaseTtlS/3 seconds
// survives two lost or slow (2 s timeout) refreshes in a row before the host is declared dead.
inline constexpr int64_t kLeaseTtlS = 10;

inline constexpr const char *kHostsPrefix = "/bulkhead/hosts/";
inline constexpr const char *kContainersPrefix = "/bulkhead/containers/";

class ClusterMember {
public:
  // containers(): this host's containers as {NAME: STATE}; called from the member's thread, so it
  // must not block for long (the daemon answers from what it can read without waiting on a lock).
  // host_state(): "online", or "evacuating" while the host's containers move away (published as
  // the host record's "state" within a second of a change).
  ClusterMember(cluster::EtcdClient client, std::string host, std::string address,
                std::function<std::map<std::string, std::string>()> containers,
                std::function<std::string()> host_state);
  ~ClusterMember();

  // Starts the thread that registers, keeps the lease alive and publishes the containers. Never fails:
  // an unreachable etcd is retried in the background.
  void start();
  // Ends the thread and revokes the lease (the host's keys vanish at once: a clean leave).
  void stop();
  // GET /1.0/cluster: {"enabled": true, "host", "hosts": [{"name", "address", "state", "started_unix",
  // "containers": [{"name", "state"}]}]}, from etcd (an error when etcd cannot be read).
  Result<nlohmann::json> view() const;

private:
  void run();
  Status register_host();         // a fresh lease and the host's key
  Status put_host(int64_t lease); // the host record with its current state
  Status publish_containers();    // puts changed containers, removes those gone

  cluster::EtcdClient client_;
  std::string host_, address_;
  std::function<std::map<std::string, std::string>()> containers_;
  std::function<std::string()> host_state_;
  std::string published_state_; // the host record's state in etcd (the thread's)
  int64_t started_unix_ = 0;
  int64_t lease_ = 0;                            // the thread's; 0: not registered
  std::map<std::string, std::string> published_; // what etcd holds under this lease (the thread's)
  std::atomic<int64_t> current_lease_{0};        // for stop(), after the thread ended
  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false; // guarded by mu_
  std::thread thread_;
};

} // namespace bulkhead::daemon
