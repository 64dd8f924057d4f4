// A container's resource usage, read from its cgroup v2 files, and the events `bulkhead events`
// streams. The JSON form is runc's (`runc events`), so tools built for runc read it unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bulkhead {

struct CpuUsageStats {
  uint64_t total_ns = 0, user_ns = 0, kernel_ns = 0;             // cpu.stat usage_usec/user_usec/system_usec
  uint64_t periods = 0, throttled_periods = 0, throttled_ns = 0; // nr_periods, nr_throttled, throttled_usec
};

struct MemoryEntryStats {
  uint64_t limit = 0; // UINT64_MAX when unlimited ("max")
  uint64_t usage = 0, max = 0, failcnt = 0;
};

struct MemoryStats {
  uint64_t cache = 0;                  // memory.stat "file"
  MemoryEntryStats usage;              // memory.current / memory.max / memory.peak / memory.events "max"
  MemoryEntryStats swap;               // memory + swap, as v1 counted it (runc does the same on v2)
  std::map<std::string, uint64_t> raw; // memory.stat
};

struct PidsStats {
  uint64_t current = 0, limit = 0; // limit 0 = unlimited
};

struct BlkioEntry {
  uint64_t major = 0, minor = 0;
  std::string op; // "Read", "Write"
  uint64_t value = 0;
};

struct BlkioStats {
  std::vector<BlkioEntry> service_bytes; // io.stat rbytes/wbytes
  std::vector<BlkioEntry> serviced;      // io.stat rios/wios
};

struct HugetlbStats {
  uint64_t usage = 0, max = 0, failcnt = 0;
};

struct ContainerStats {
  CpuUsageStats cpu;
  std::optional<MemoryStats> memory; // absent without the memory controller
  PidsStats pids;
  BlkioStats blkio;
  std::map<std::string, HugetlbStats> hugetlb; // by page size, "2MB"
};

struct ContainerEvent {
  std::string type; // "stats" or "oom"
  std::string id;
  std::optional<ContainerStats> stats; // for "stats"
};

// One line of `runc events` output: {"type":"stats","id":"x","data":{"cpu":{...},...}}.
std::string event_to_json(const ContainerEvent &event);

} // namespace bulkhead
