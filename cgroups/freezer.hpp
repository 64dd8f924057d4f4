// cgroup v2 freezer: cgroup.freeze, with cgroup.events telling when every process is stopped.
#pragma once

#include "bulkhead/result.hpp"
#include "cgroups/cgroup.hpp"

namespace bulkhead::cgroups {

// Writes 1 to cgroup.freeze and waits until cgroup.events reports "frozen 1". On timeout the
// cgroup is thawed again and the error says so.
Status freeze(const Cgroup &cg, int timeout_ms = 10000);
// Writes 0 to cgroup.freeze (processes continue at once; the kernel needs no wait).
Status thaw(const Cgroup &cg);
// cgroup.freeze reads 1 (the state requested, which is what `state` reports as paused).
Result<bool> freeze_requested(const Cgroup &cg);

} // namespace bulkhead::cgroups
