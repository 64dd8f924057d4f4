#include "daemon/request_fields.hpp"

#include <fmt/core.h>

namespace bulkhead::daemon {

Status known_fields(const nlohmann::json &j, std::initializer_list<const char *> known, const char *what) {
  if (!j.is_object())
    return fail(std::string(what) + ": the body must be a JSON object", EINVAL);
  for (const auto &[k, v] : j.items()) {
    bool ok = false;
    for (const char *n : known)
      ok = ok || k == n;
    if (!ok)
      return fail(fmt::format("{}: unknown field \"{}\"", what, k), EINVAL);
  }
  return {};
}

Result<std::string> string_field(const nlohmann::json &j, const char *name, bool required) {
  if (!j.contains(name)) {
    if (required)
      return fail(fmt::format("\"{}\" is required", name), EINVAL);
    return std::string();
  }
  if (!j[name].is_string())
    return fail(fmt::format("\"{}\" must be a string", name), EINVAL);
  return j[name].get<std::string>();
}

} // namespace bulkhead::daemon
