// Milliseconds on the steady clock: durations and deadlines inside one process (lease validity,
// replication rounds, caches). Never compared across hosts, never a wall-clock time.
#pragma once

#include <chrono>
#include <cstdint>

namespace bulkhead::daemon {

inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace bulkhead::daemon
