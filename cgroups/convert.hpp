// linux.resources (written for cgroup v1) -> cgroup v2 interface files, with the conversion rules
// runc and crun share. Pure: nothing here touches the filesystem, so every rule is unit-tested with
// exact values; resources.cpp applies the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::cgroups {

// One write of one cgroup v2 interface file.
struct FileWrite {
  std::string controller; // "memory", "cpu", ...; "cgroup" for the core cgroup.* files
  std::string file;       // "memory.max"
  std::string value;      // "1048576"
  std::string field;      // "linux.resources.memory.limit": what error messages name
  // memory.swap.max set to "max" or "0" is skipped when the file is absent (no swap accounting),
  // since both mean what a host without swap does anyway.
  bool skip_if_absent = false;
};

// What the conversion needs to know about the host (found by resources.cpp once the controllers
// are enabled).
struct HostFeatures {
  bool bfq = false;          // io.bfq.weight exists: blkio weights go there, unconverted
  bool hugetlb_rsvd = false; // hugetlb.<size>.rsvd.max exists: reserved pages get the limit too
};

// cpu.shares [2, 262144] -> cpu.weight [1, 10000], the curve runc (opencontainers/cgroups) and crun
// adopted in 2025: log2-quadratic, so the default 1024 maps to the default weight 100. 0 = unset.
uint64_t cpu_shares_to_weight(uint64_t shares);

// blkio.weight [10, 1000] -> io.weight [1, 10000], linearly. 0 = unset.
uint64_t blkio_weight_to_io_weight(uint64_t weight);

// memory.swap is memory+swap in the spec (v1); memory.swap.max is swap alone. Returns the value for
// memory.swap.max: -1 = "max", nullopt = leave the file alone. `swap` and `limit` are 0 when unset.
Result<std::optional<int64_t>> memory_swap_to_v2(int64_t swap, int64_t limit);

// -1 -> "max", anything else in decimal.
std::string max_or_number(int64_t v);

// The v2 writes for every resource in `r` except devices (those become an eBPF program, see
// device_filter.hpp), in the order they are applied. `unified` entries come last and win.
// Fails on values no cgroup v2 file can express (realtime CPU, net_cls, bad ranges).
Result<std::vector<FileWrite>> convert_resources(const oci::Resources &r, const HostFeatures &host = {});

// The controller an interface file belongs to: "memory.max" -> "memory", "cgroup.freeze" ->
// "cgroup". Empty when the name has no dot.
std::string controller_of(const std::string &file);

} // namespace bulkhead::cgroups
