// A process is identified by pid + start time (field 22 of /proc/PID/stat), so a recycled pid is
// never mistaken for the container's init, and never signalled.
#pragma once

#include <cstdint>
#include <sys/types.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::runtime {

struct ProcessId {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

struct ProcStat {
  char state = '?'; // R, S, D, Z, X, ...
  uint64_t start_time = 0;
};

Result<ProcStat> read_proc_stat(pid_t pid);

// Alive means: the pid exists, has the recorded start time and is not a zombie. A dead init that
// nobody reaped yet is not alive.
bool is_alive(const ProcessId &id);

// pidfd of the process, verified against the start time after opening (so the check and the
// signal cannot race a pid reuse). ESRCH when the process is gone.
Result<UniqueFd> open_pidfd(const ProcessId &id);

Status send_signal(const ProcessId &id, int sig);

// Waits until the process exits (it need not be our child). false on timeout.
Result<bool> wait_exit(const ProcessId &id, int timeout_ms);

} // namespace bulkhead::runtime
