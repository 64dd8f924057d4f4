#include "daemon/cluster_placement.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

json Placement::to_json() const {
  json j = {{"host", host}, {"standby", standby}, {"mode", mode}, {"restart", restart}, {"epoch", epoch}};
  // Only when set, so a plain placement reads as the design's {host, standby, mode, restart, epoch}.
  if (!failed_over_from.empty())
    j["failed_over_from"] = failed_over_from;
  if (lost) {
    j["lost"] = true;
    j["lost_reason"] = lost_reason;
  }
  if (!error.empty()) {
    j["error"] = error;
    j["attempts"] = attempts;
  }
  return j;
}

Result<Placement> parse_placement(const std::string &text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("host") || !j["host"].is_string() || j["host"].get<std::string>().empty())
    return fail("placement value '" + text + "' is not an object with a \"host\"", EINVAL);
  Placement p;
  try {
    p.host = j["host"].get<std::string>();
    p.standby = j.value("standby", std::string());
    p.mode = j.value("mode", std::string());
    p.restart = j.value("restart", false);
    p.epoch = j.value("epoch", int64_t{1});
    p.failed_over_from = j.value("failed_over_from", std::string());
    p.lost = j.value("lost", false);
    p.lost_reason = j.value("lost_reason", std::string());
    p.error = j.value("error", std::string());
    p.attempts = j.value("attempts", int64_t{0});
  } catch (const json::exception &e) {
    return fail("placement value '" + text + "': " + e.what(), EINVAL);
  }
  return p;
}

Placement owned_placement(const std::string &host, const LocalContainer &c, const Placement *old) {
  Placement p;
  p.host = host;
  p.standby = c.standby;
  p.mode = c.standby.empty() ? "" : c.mode;
  p.restart = c.restart;
  p.epoch = old ? old->epoch : 1;
  return p;
}

} // namespace bulkhead::daemon
