// OCI hooks: each runs with the state JSON on stdin, its own args and env, and an optional timeout
// after which it is killed. The caller decides whether a failure aborts (prestart, createRuntime,
// createContainer, startContainer) or is only logged (poststart, poststop).
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::runtime {

Status run_hook(const oci::Hook &hook, const std::string &state_json, const char *phase);
Status run_hooks(const std::vector<oci::Hook> &hooks, const std::string &state_json, const char *phase);

} // namespace bulkhead::runtime
