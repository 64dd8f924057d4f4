// Self-fencing of a host cut off from etcd (`bulkheadd --cluster-self-fence`; docs/cluster.md
// "Split brain"). Without it, a host partitioned from etcd runs its protected containers on while
// the leader fails them over to their standbys: two copies run until the partition heals. With it,
// the host freezes them before its lease can have expired, and decides what they become once it
// reads etcd again:
//
// | step | when                                          | what                                        |
// |------|-----------------------------------------------|---------------------------------------------|
// | 1    | the lease's sure validity (ClusterMember::    | for each running protected container: ask   |
// |      | lease_valid_until_ms) is under kTriggerMs     | its standby whether it reaches etcd now     |
// |      | away (the keep-alives stopped answering)      | (peer request "cluster.etcd": one read)     |
// | 2    | the standby cannot reach etcd either          | etcd is down for both: nobody can fail it   |
// |      |                                               | over, so it runs on (the issue's "etcd      |
// |      |                                               | unreachable: containers keep running")      |
// | 2'   | the standby reaches etcd, or cannot be asked  | this host is the one cut off: the container |
// |      |                                               | is frozen (its memory kept) and marked      |
// | 3    | the lease is fresh again (etcd answered)      | each marked container's placement is read:  |
// |      |                                               | on this host (or none) -> thawed; on another|
// |      |                                               | host -> fenced (stopped, never started)     |
//
// The freeze comes before the leader can see the lease expired (it fires a second before the
// earliest expiry), and the standby's restore takes seconds after that, so the two copies never run
// at once, whatever the partition. The price: a host that loses etcd while its standbys keep it
// pauses its protected containers until etcd answers. Nothing here forks; one thread of its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/result.hpp"
#include "daemon/cluster_member.hpp"

namespace bulkhead::daemon {

// Step 1's threshold: a healthy host refreshes every TTL/3, so its sure validity stays above
// TTL/3 (2 s with a TTL of 3 s) unless refreshes stop answering.
inline constexpr int64_t kTriggerMs = 1000;

struct SelfFenceHooks {
  struct Protected {
    std::string name, standby;
  };
  std::function<std::vector<Protected>()> running_protected; // never waits on a busy container
  // The standby reaches etcd now (true), does not (false), or cannot be asked (an error).
  std::function<Result<bool>(const std::string &standby)> standby_reaches_etcd;
  std::function<Status(const std::string &name)> freeze;
  std::function<Status(const std::string &name)> thaw;
  // The host the placement of NAME names, nullopt without one.
  std::function<Result<std::optional<std::string>>(const std::string &name)> placement_host;
  std::function<void(const std::string &name, const std::string &owner)> fence;
};

class SelfFence {
public:
  SelfFence(const ClusterMember &member, SelfFenceHooks hooks);
  ~SelfFence();
  void start();
  void stop();
  std::set<std::string> frozen(); // the containers it froze and has not decided on yet
  // NAME is (being) frozen by this: its replication rounds must not run (a round would thaw it, or
  // send a disk-only set of it over the standby's last memory set).
  bool holds(const std::string &name);

private:
  void run();
  void round();

  const ClusterMember &member_;
  SelfFenceHooks hooks_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false;            // guarded by mu_
  std::set<std::string> frozen_; // guarded by mu_
  // Containers whose standby said etcd is down for it too, with when to ask again (the thread's):
  // the standby may reach etcd again before this host does.
  std::map<std::string, int64_t> kept_running_;
  std::thread thread_;
};

} // namespace bulkhead::daemon
