// Running a helper program from a multithreaded daemon: posix_spawn only (fork would copy a process
// whose other threads may hold locks), in its own process group so the whole tree can be killed.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

struct Child {
  pid_t pid = -1;
  UniqueFd output; // read end: the child's stdout and stderr
};

// argv[0] is looked up in PATH; env is the complete environment. stdin is /dev/null; signal mask and
// dispositions are reset to the defaults.
Result<Child> spawn_with_output(const std::vector<std::string> &argv, const std::vector<std::string> &env);

// Waits for pid and returns its wait status.
Result<int> wait_child(pid_t pid);

} // namespace bulkhead::storage
