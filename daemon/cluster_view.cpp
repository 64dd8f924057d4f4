// GET /1.0/cluster: the cluster as etcd holds it, so any member answers for all of them. A member
// (/bulkhead/members/NAME, no lease) whose host key (lease) is gone is "offline" (dead: its lease
// expired) or "stopped" (its daemon stopped cleanly); liveness comes only from etcd's leases.
#include <fmt/core.h>

#include "daemon/cluster_member.hpp"
#include "daemon/cluster_placement.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

json object_or_null(const std::string &text) {
  auto v = json::parse(text, nullptr, false);
  return v.is_object() ? v : json();
}

} // namespace

Result<json> cluster_view(const cluster::EtcdClient &client, const std::string &self) {
  auto hosts = BH_TRY(client.list(kHostsPrefix));
  auto members = BH_TRY(client.list(kMembersPrefix));
  auto containers = BH_TRY(client.list(kContainersPrefix));
  auto placements = BH_TRY(client.list(kPlacementPrefix));
  auto leader = BH_TRY(client.get(kLeaderKey));
  // HOST/NAME -> state
  std::map<std::string, json> by_host;
  for (const auto &[key, kv] : containers) {
    std::string rest = key.substr(std::string(kContainersPrefix).size());
    auto slash = rest.find('/');
    if (slash == std::string::npos)
      continue;
    json value = object_or_null(kv.value);
    std::string state = value.is_object() ? value.value("state", std::string("unknown")) : "unknown";
    by_host[rest.substr(0, slash)].push_back({{"name", rest.substr(slash + 1)}, {"state", state}});
  }
  // Every member, in name order: the live ones from their host key, the others from the member key.
  std::map<std::string, json> rows;
  for (const auto &[key, kv] : members) {
    json value = object_or_null(kv.value);
    if (!value.is_object())
      continue; // not ours: skip rather than fail the whole listing
    std::string name = key.substr(std::string(kMembersPrefix).size());
    rows[name] = {{"name", name},
                  {"address", value.value("address", std::string())},
                  {"state", value.contains("stopped_unix") ? "stopped" : "offline"},
                  {"started_unix", value.value("joined_unix", int64_t{0})}};
  }
  for (const auto &[key, kv] : hosts) {
    json value = object_or_null(kv.value);
    if (!value.is_object())
      continue;
    std::string name = key.substr(std::string(kHostsPrefix).size());
    rows[name] = {{"name", name},
                  {"address", value.value("address", std::string())},
                  {"state", value.value("state", std::string("online"))},
                  {"started_unix", value.value("started_unix", int64_t{0})}};
  }
  json out = {{"enabled", true},
              {"host", self},
              {"leader", nullptr},
              {"hosts", json::array()},
              {"placements", json::array()}};
  if (leader) {
    json value = object_or_null(leader->value);
    if (value.is_object())
      out["leader"] = value.value("host", std::string());
  }
  for (auto &[name, row] : rows) {
    row["containers"] = by_host.count(name) ? by_host[name] : json::array();
    out["hosts"].push_back(std::move(row));
  }
  for (const auto &[key, kv] : placements) {
    auto p = parse_placement(kv.value);
    if (!p)
      continue;
    json j = p->to_json();
    j["name"] = key.substr(std::string(kPlacementPrefix).size());
    out["placements"].push_back(std::move(j));
  }
  return out;
}

} // namespace bulkhead::daemon
