// OCI hooks: each runs with the state JSON on stdin, its own args and env, and an optional timeout
// after which it is killed. The caller decides whether a failure aborts (prestart, createRuntime,
// createContainer, startContainer) or is only logged (poststart, poststop).
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::runtime {

// Working directories, as runc: prestart and createRuntime hooks run in the bundle (runc chdirs
// there for create/run), createContainer hooks in the rootfs as the runtime sees it (init's cwd
// then), startContainer hooks in the process's cwd, poststart and poststop in the caller's. `cwd`
// empty: the caller's own.
Status run_hook(const oci::Hook &hook, const std::string &state_json, const char *phase,
                const std::string &cwd = {});
Status run_hooks(const std::vector<oci::Hook> &hooks, const std::string &state_json, const char *phase,
                 const std::string &cwd = {});

} // namespace bulkhead::runtime
