// personality(2), ioprio_set(2), sched_setattr(2): name tables (parent) and application (child).
#pragma once

#include "bulkhead/result.hpp"
#include "security/plan.hpp"

namespace bulkhead::security {

Result<unsigned long> resolve_personality(const oci::Personality &p);
Result<int> resolve_io_priority(const oci::IoPriority &p);
Result<SchedulerPlan> resolve_scheduler(const oci::Scheduler &s);

} // namespace bulkhead::security
