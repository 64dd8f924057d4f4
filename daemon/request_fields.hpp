// The strict reading of API request bodies the daemon's handlers share: a body is a JSON object
// with only the fields the endpoint knows (a misspelt field is an error, never ignored), and
// string fields are strings.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

// EINVAL "WHAT: the body must be a JSON object" / "WHAT: unknown field \"F\"".
Status known_fields(const nlohmann::json &j, std::initializer_list<const char *> known, const char *what);

// The string field NAME; "" when absent and not required. EINVAL when it is not a string.
Result<std::string> string_field(const nlohmann::json &j, const char *name, bool required);

} // namespace bulkhead::daemon
