// Leader election and failover (issue 14, docs/cluster.md "Leader" and "Failover"). The leader holds
// /bulkhead/leader {"host"} under its own lease (created with create_if_absent: of racing hosts one
// wins; it vanishes with the leader's lease). Only the leader acts on dead hosts, and every write it
// makes is one etcd txn guarded by its leader key's revision, the dead host's key being absent and
// the placement's revision: a leader whose lease expired, a host that came back, or a placement
// changed since it was read make the write fail instead of acting on stale data.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/etcd_client.hpp"

namespace bulkhead::daemon {

class ClusterLeader {
public:
  // event(action, container, detail): published on this daemon's event stream.
  using EventFn = std::function<void(const std::string &, const std::string &, const nlohmann::json &)>;
  ClusterLeader(const cluster::EtcdClient &client, std::string host, EventFn event)
      : client_(client), host_(std::move(host)), event_(std::move(event)) {}

  // One round: campaigns when there is no leader (with `lease`, this host's lease; 0: not
  // registered, so neither leading nor campaigning), and as leader fails over dead hosts'
  // containers. An etcd error ends the round; the next one starts afresh.
  Status tick(int64_t lease);
  bool leading() const { return leader_rev_ != 0; }
  // Placements this leader moved to a standby so far: a change tells the caller to read the
  // placements again at once (the standby may be this very host).
  uint64_t failovers() const { return failovers_; }

private:
  Status failover_pass();

  const cluster::EtcdClient &client_;
  std::string host_;
  EventFn event_;
  int64_t leader_rev_ = 0; // mod revision of /bulkhead/leader while it is ours, else 0
  uint64_t failovers_ = 0;
};

} // namespace bulkhead::daemon
