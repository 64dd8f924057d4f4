#include "daemon/monitor_protocol.hpp"

#include <set>

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

template <class T> Result<T> get_field(const json &j, const char *key, T fallback) {
  if (!j.contains(key))
    return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception &) {
    return failf("exec request: {:?} has the wrong type", key);
  }
}

} // namespace

Result<ExecRequest> exec_request_from_json(const json &j) {
  static const std::set<std::string> keys = {"op", "args", "env", "user", "cwd", "tty", "rows", "cols"};
  if (!j.is_object())
    return fail("exec request: expected a JSON object");
  for (const auto &[k, v] : j.items())
    if (!keys.count(k))
      return failf("exec request: unknown key {:?}", k);
  ExecRequest r;
  r.args = BH_TRY(get_field<std::vector<std::string>>(j, "args", {}));
  if (r.args.empty())
    return fail("exec request: \"args\" must be a non-empty array of strings");
  r.env = BH_TRY(get_field<std::vector<std::string>>(j, "env", {}));
  for (const auto &kv : r.env)
    if (kv.find('=') == std::string::npos || kv.front() == '=')
      return failf("exec request: env {:?} is not KEY=VALUE", kv);
  r.user = BH_TRY(get_field<std::string>(j, "user", ""));
  r.cwd = BH_TRY(get_field<std::string>(j, "cwd", ""));
  if (!r.cwd.empty() && r.cwd[0] != '/')
    return failf("exec request: cwd {:?} must be absolute", r.cwd);
  r.tty = BH_TRY(get_field<bool>(j, "tty", false));
  r.rows = BH_TRY(get_field<unsigned short>(j, "rows", 0));
  r.cols = BH_TRY(get_field<unsigned short>(j, "cols", 0));
  return r;
}

json exec_request_to_json(const ExecRequest &r) {
  return json{{"op", "exec"}, {"args", r.args}, {"env", r.env},   {"user", r.user},
              {"cwd", r.cwd}, {"tty", r.tty},   {"rows", r.rows}, {"cols", r.cols}};
}

} // namespace bulkhead::daemon
