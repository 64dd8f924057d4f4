// Where `host evacuate` without a REMOTE sends each container, in a cluster (docs/migration.md
// "Evacuating a host", docs/cluster.md): to the hosts the cluster lists online, other than this
// one, that this host is paired with under their host names (the channel a migration needs),
// spreading the containers so that the host with the fewest containers gets the next one (ties by
// name). Liveness is etcd's (the view's host states); nothing here reads a clock.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bulkhead::daemon {

struct EvacuationTarget {
  std::string name;   // the container
  std::string remote; // the host it goes to; empty when none can take it
  std::string error;  // why not, when remote is empty
};

// view: GET /1.0/cluster's answer (cluster_view); paired(host): whether a remote of that name exists.
std::vector<EvacuationTarget> plan_cluster_evacuation(const std::vector<std::string> &containers,
                                                      const nlohmann::json &view, const std::string &self,
                                                      const std::function<bool(const std::string &)> &paired);

// `cluster rebalance` (docs/migration.md "Rebalancing a cluster"): which of this host's containers
// go where so that it holds no more than one container above the least loaded host it can reach
// (online, paired or trusted, as above). Candidates are in the order they are picked (the caller
// puts stopped ones first: they move cold, with no downtime); each goes to the host running the
// fewest at that moment, and the plan ends as soon as one more move would not even the load.
// Only the moves are returned; an empty plan means this host is balanced (or nobody can take one).
std::vector<EvacuationTarget> plan_rebalance(const std::vector<std::string> &candidates,
                                             const nlohmann::json &view, const std::string &self,
                                             const std::function<bool(const std::string &)> &paired);

} // namespace bulkhead::daemon
