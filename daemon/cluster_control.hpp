// The host's cluster thread (issue 14, docs/cluster.md "Placement", "Failover", "Fencing"): every
// round it reads the placements from etcd and
//   - publishes the placement of each local container (create_if_absent; updates only through a
//     write guarded by the revision of a value that names this host),
//   - fences a local container whose placement names another host (the leader moved it away),
//   - activates the replica of a container the leader failed over to this host (in a thread of its
//     own, retried with backoff; each failure is published in the placement and as an event),
//   - runs the leader's round (daemon/cluster_leader.hpp).
// Nothing is decided on data that was not read from etcd in this round: while etcd cannot be read
// the thread only retries, and containers run on. Nothing here forks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/cluster_leader.hpp"
#include "daemon/cluster_member.hpp"
#include "daemon/cluster_placement.hpp"

namespace bulkhead::daemon {

struct ClusterHooks {
  std::function<std::vector<LocalContainer>()> containers; // never waits on a busy container
  // The placement of NAME names `owner`: stop the local copy and never start it (persisted).
  std::function<void(const std::string &name, const std::string &owner)> fence;
  // The placement of a fenced NAME names this host again: it may run here.
  std::function<void(const std::string &name)> unfence;
  std::function<Status(const std::string &name)> activate; // Daemon::activate_replica
  ClusterLeader::EventFn event;
  std::function<void()> each_round; // before each round, whatever etcd answers (may be empty)
};

class ClusterControl {
public:
  ClusterControl(const ClusterMember &member, ClusterHooks hooks);
  ~ClusterControl();
  void start();
  void stop(); // ends the thread, after the activations under way

private:
  struct Activation {
    std::thread thread;
    std::atomic<bool> done{false};
    bool ok = false; // written by the thread before done
    int failures = 0;
    std::chrono::steady_clock::time_point next{};
  };
  void run();
  Status round();
  Status sync(const std::vector<std::pair<std::string, cluster::KeyValue>> &placements);
  void maybe_activate(const std::string &name);
  void activate(const std::string &name, Activation &a);
  void reap(bool wait);
  bool activating(const std::string &name) const; // an attempt is under way

  const ClusterMember &member_;
  const cluster::EtcdClient &client_;
  std::string host_;
  ClusterHooks hooks_;
  ClusterLeader leader_;
  std::map<std::string, std::unique_ptr<Activation>> activations_; // the thread's
  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false; // guarded by mu_
  std::thread thread_;
};

} // namespace bulkhead::daemon
