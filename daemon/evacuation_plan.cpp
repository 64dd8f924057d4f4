#include "daemon/evacuation_plan.hpp"

#include <map>

#include <fmt/core.h>
#include <fmt/ranges.h>

namespace bulkhead::daemon {

std::vector<EvacuationTarget>
plan_cluster_evacuation(const std::vector<std::string> &containers, const nlohmann::json &view,
                        const std::string &self, const std::function<bool(const std::string &)> &paired) {
  std::map<std::string, size_t> load; // candidate host -> containers it runs (and gets from us)
  std::vector<std::string> online_unpaired;
  const nlohmann::json hosts = view.value("hosts", nlohmann::json::array());
  if (hosts.is_array())
    for (const auto &h : hosts) {
      if (!h.is_object() || h.value("state", "") != "online")
        continue;
      std::string name = h.value("name", "");
      if (name.empty() || name == self)
        continue;
      if (!paired(name)) {
        online_unpaired.push_back(name);
        continue;
      }
      const nlohmann::json list = h.value("containers", nlohmann::json::array());
      load[name] = list.is_array() ? list.size() : 0;
    }
  std::string none;
  if (load.empty())
    none = online_unpaired.empty()
               ? "no other host of the cluster is online"
               : fmt::format("no online host of the cluster is paired with this one ({} online; `bulkheadctl "
                             "remote add HOST ADDRESS --token T` pairs one under its host name)",
                             fmt::join(online_unpaired, ", "));
  std::vector<EvacuationTarget> out;
  out.reserve(containers.size());
  for (const auto &c : containers) {
    if (load.empty()) {
      out.push_back({c, "", none});
      continue;
    }
    auto best = load.begin();
    for (auto it = load.begin(); it != load.end(); ++it)
      if (it->second < best->second)
        best = it; // the map is in name order: the first of equals wins
    ++best->second;
    out.push_back({c, best->first, ""});
  }
  return out;
}

} // namespace bulkhead::daemon
