// Waiting for a foreground process (run, exec): relay signals (and a pty, when there is one) to it,
// reap orphans as a subreaper, and turn its wait status into an exit code.
#pragma once

#include <csignal>
#include <sys/types.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::runtime {

// The signals forwarded to the process, plus SIGCHLD; block them before the process exists.
sigset_t foreground_signals();

// Returns the wait status of pid. master may be invalid (no terminal).
Result<int> wait_foreground(pid_t pid, UniqueFd master, const sigset_t &signals);

int exit_code(int wait_status);

} // namespace bulkhead::runtime
