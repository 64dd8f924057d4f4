// Capability names <-> numbers, via libcap's table, checked against the running kernel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/result.hpp"
#include "security/plan.hpp"

namespace bulkhead::security {

// "CAP_NET_ADMIN" -> 12. Only the spec's spelling (CAP_ prefix, upper case) is accepted.
Result<int> capability_from_name(std::string_view name);
std::string capability_name(int cap); // "CAP_NET_ADMIN"
// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

// Resolves all five sets. Names the kernel does not know (newer than it) are skipped with a
// warning; names nobody knows are an error naming the set and the entry.
Result<CapabilityPlan> resolve_capabilities(const oci::Capabilities &caps, const WarnFn &warn);

// Child: drops the CAP_SYS_ADMIN apply_capabilities_and_user kept for loading seccomp.
Status finish_capabilities(const SecurityPlan &plan);

} // namespace bulkhead::security
