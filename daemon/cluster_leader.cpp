#include "daemon/cluster_leader.hpp"

#include <map>
#include <set>

#include <fmt/core.h>

#include "daemon/cluster_member.hpp"
#include "daemon/cluster_placement.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

Status ClusterLeader::tick(int64_t lease) {
  int64_t was = leader_rev_;
  leader_rev_ = 0;
  if (lease == 0)
    return {};
  auto cur = BH_TRY(client_.get(kLeaderKey));
  if (!cur) {
    if (!BH_TRY(client_.create_if_absent(kLeaderKey, json{{"host", host_}}.dump(), lease)))
      return {}; // another host won the race
    cur = BH_TRY(client_.get(kLeaderKey));
    if (!cur)
      return {}; // our lease expired at once: not leading
  }
  auto value = json::parse(cur->value, nullptr, false);
  // Ours only under this very lease: a key left by our previous lease (before we registered again)
  // is not a leadership we may act on; it goes when that lease expires.
  if (!value.is_object() || value.value("host", "") != host_ || cur->lease != lease) {
    if (was)
      fmt::print(stderr, "bulkheadd: cluster: {} is no longer the leader\n", host_);
    return {};
  }
  leader_rev_ = cur->mod_revision;
  if (!was) {
    fmt::print(stderr, "bulkheadd: cluster: {} is the leader (lease {:x})\n", host_, lease);
    event_("cluster-leader", host_, {{"host", host_}});
  }
  return failover_pass();
}

// A member whose host key is gone is dead, unless it left on purpose (its daemon stopped cleanly and
// said so: "stopped_unix"). Each of its placements moves to its standby when that host is online;
// otherwise it is marked lost. The read is one snapshot; each write re-checks what it relies on.
Status ClusterLeader::failover_pass() {
  auto members = BH_TRY(client_.list(kMembersPrefix));
  auto hosts = BH_TRY(client_.list(kHostsPrefix));
  auto placements = BH_TRY(client_.list(kPlacementPrefix));
  std::set<std::string> online, dead;
  for (const auto &[key, kv] : hosts)
    online.insert(key.substr(std::string(kHostsPrefix).size()));
  for (const auto &[key, kv] : members) {
    std::string name = key.substr(std::string(kMembersPrefix).size());
    auto value = json::parse(kv.value, nullptr, false);
    if (!online.count(name) && value.is_object() && !value.contains("stopped_unix"))
      dead.insert(name);
  }
  if (dead.empty())
    return {};
  for (const auto &[key, kv] : placements) {
    auto p = parse_placement(kv.value);
    if (!p || p->lost || !dead.count(p->host))
      continue;
    std::string name = key.substr(std::string(kPlacementPrefix).size());
    std::string from = p->host;
    Placement next = *p;
    std::string action;
    json detail = {{"from", from}};
    if (!p->standby.empty() && p->standby != from && online.count(p->standby)) {
      next.host = p->standby;
      next.standby.clear();
      next.epoch = p->epoch + 1;
      next.failed_over_from = from;
      next.error.clear();
      next.attempts = 0;
      action = "container-failover";
      detail["to"] = next.host;
      detail["epoch"] = next.epoch;
    } else {
      next.lost = true;
      next.lost_reason = p->standby.empty()
                             ? fmt::format("host {} died and {} has no standby", from, name)
                             : fmt::format("host {} died and its standby {} is not online", from, p->standby);
      action = "container-lost";
      detail["reason"] = next.lost_reason;
    }
    std::vector<cluster::Guard> guards = {
        {kLeaderKey, leader_rev_}, {kHostsPrefix + from, 0}, {key, kv.mod_revision}};
    if (!BH_TRY(client_.put_if(guards, key, next.dump()))) {
      // Our leadership, the dead host's absence or the placement changed since the read: nothing
      // was written; the next round reads afresh (and, no longer leader, does nothing).
      fmt::print(stderr, "bulkheadd: cluster: failover of {} from {}: changed meanwhile, not applied\n", name,
                 from);
      return {};
    }
    if (action == "container-failover") {
      ++failovers_;
      fmt::print(stderr, "bulkheadd: cluster: {} is dead: {} moves to its standby {} (epoch {})\n", from,
                 name, next.host, next.epoch);
    } else {
      fmt::print(stderr, "bulkheadd: cluster: {} is lost: {}\n", name, next.lost_reason);
    }
    event_(action, name, detail);
  }
  return {};
}

} // namespace bulkhead::daemon
