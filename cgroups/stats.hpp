// Reading a container's usage from its cgroup v2 files, and watching memory.events for OOM kills.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bulkhead/result.hpp"
#include "bulkhead/stats.hpp"
#include "bulkhead/unique_fd.hpp"
#include "cgroups/cgroup.hpp"

namespace bulkhead::cgroups {

// "key value" lines (cpu.stat, memory.stat, memory.events, ...). "max" reads as UINT64_MAX.
std::map<std::string, uint64_t> parse_keyed(const std::string &text);
Result<std::map<std::string, uint64_t>> read_keyed(const std::string &path);

// Sections whose controller is not enabled keep their zero values (memory stays absent).
Result<ContainerStats> read_stats(const Cgroup &cg);

// Counts OOM kills through inotify on memory.events (the kernel raises IN_MODIFY when it changes).
class OomWatcher {
public:
  // Fails when the cgroup has no memory controller (no memory.events).
  static Result<OomWatcher> open(const Cgroup &cg);
  int fd() const { return inotify_.get(); } // readable when memory.events changed
  // Drains the notifications; returns the OOM kills since the previous call (or since open).
  Result<uint64_t> new_kills();

private:
  UniqueFd inotify_;
  std::string events_path_;
  uint64_t seen_ = 0;
};

} // namespace bulkhead::cgroups
