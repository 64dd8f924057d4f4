#include "daemon/evacuation_plan.hpp"

#include <algorithm>
#include <map>

#include <fmt/core.h>
#include <fmt/ranges.h>

namespace bulkhead::daemon {

namespace {

size_t containers_of(const nlohmann::json &host) {
  const nlohmann::json list = host.value("containers", nlohmann::json::array());
  return list.is_array() ? list.size() : 0;
}

// The hosts a container may go to (online, not this one, reachable by name), with how many
// containers each runs; the online ones it cannot reach go to *unreachable.
std::map<std::string, size_t> reachable_load(const nlohmann::json &view, const std::string &self,
                                             const std::function<bool(const std::string &)> &paired,
                                             std::vector<std::string> *unreachable) {
  std::map<std::string, size_t> load;
  const nlohmann::json hosts = view.value("hosts", nlohmann::json::array());
  if (hosts.is_array())
    for (const auto &h : hosts) {
      if (!h.is_object() || h.value("state", "") != "online")
        continue;
      std::string name = h.value("name", "");
      if (name.empty() || name == self)
        continue;
      if (!paired(name)) {
        unreachable->push_back(name);
        continue;
      }
      load[name] = containers_of(h);
    }
  return load;
}

// The least loaded host; the map is in name order, so the first of equals wins.
std::map<std::string, size_t>::iterator least_loaded(std::map<std::string, size_t> &load) {
  auto best = load.begin();
  for (auto it = load.begin(); it != load.end(); ++it)
    if (it->second < best->second)
      best = it;
  return best;
}

} // namespace

std::vector<EvacuationTarget>
plan_cluster_evacuation(const std::vector<std::string> &containers, const nlohmann::json &view,
                        const std::string &self, const std::function<bool(const std::string &)> &paired) {
  std::vector<std::string> online_unpaired;
  auto load = reachable_load(view, self, paired, &online_unpaired);
  std::string none;
  if (load.empty())
    none = online_unpaired.empty()
               ? "no other host of the cluster is online"
               : fmt::format("no online host of the cluster is paired with this one ({} online; `bulkheadctl "
                             "remote add HOST ADDRESS --token T` pairs one under its host name, `cluster "
                             "join` trusts them all)",
                             fmt::join(online_unpaired, ", "));
  std::vector<EvacuationTarget> out;
  out.reserve(containers.size());
  for (const auto &c : containers) {
    if (load.empty()) {
      out.push_back({c, "", none});
      continue;
    }
    auto best = least_loaded(load);
    ++best->second;
    out.push_back({c, best->first, ""});
  }
  return out;
}

std::vector<EvacuationTarget> plan_rebalance(const std::vector<std::string> &candidates,
                                             const nlohmann::json &view, const std::string &self,
                                             const std::function<bool(const std::string &)> &paired) {
  std::vector<std::string> unreachable;
  auto load = reachable_load(view, self, paired, &unreachable);
  // This host's own count as etcd has it, like the others' (a container created a moment ago
  // counts once published); never fewer than the candidates here.
  size_t mine = candidates.size();
  const nlohmann::json hosts = view.value("hosts", nlohmann::json::array());
  if (hosts.is_array())
    for (const auto &h : hosts)
      if (h.is_object() && h.value("name", "") == self)
        mine = std::max(mine, containers_of(h));
  std::vector<EvacuationTarget> out;
  for (const auto &c : candidates) {
    if (load.empty())
      break;
    auto best = least_loaded(load);
    if (mine <= best->second + 1)
      break; // one more move would only swap which host holds the extra container
    ++best->second;
    --mine;
    out.push_back({c, best->first, ""});
  }
  return out;
}

} // namespace bulkhead::daemon
