#include "cgroups/convert.hpp"

#include <cmath>
#include <fmt/format.h>

namespace bulkhead::cgroups {

namespace {

constexpr const char *kRes = "linux.resources";

std::string dev_key(int64_t major, int64_t minor) { return fmt::format("{}:{}", major, minor); }

// The spec's "limit" style values: 0 = unset, -1 = unlimited, otherwise a positive count.
Status check_limit(int64_t v, const std::string &field) {
  if (v < -1)
    return failf("{}: {} is invalid (use -1 for unlimited or a positive value)", field, v);
  return {};
}

bool valid_page_size(const std::string &s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9')
    ++digits;
  if (digits == 0 || digits + 2 != s.size())
    return false;
  return (s[digits] == 'K' || s[digits] == 'M' || s[digits] == 'G') && s[digits + 1] == 'B';
}

class Writes {
public:
  void add(std::string controller, std::string file, std::string value, std::string field,
           bool skip_if_absent = false) {
    out_.push_back(FileWrite{std::move(controller), std::move(file), std::move(value), std::move(field),
                             skip_if_absent});
  }
  std::vector<FileWrite> take() { return std::move(out_); }

private:
  std::vector<FileWrite> out_;
};

Status convert_memory(const oci::MemoryResources &m, Writes &w) {
  const std::string f = fmt::format("{}.memory", kRes);
  int64_t limit = m.limit.value_or(0), swap = m.swap.value_or(0), low = m.reservation.value_or(0);
  BH_CHECK(check_limit(limit, f + ".limit"));
  BH_CHECK(check_limit(low, f + ".reservation"));
  auto swap_v2 = memory_swap_to_v2(swap, limit);
  if (!swap_v2)
    return fail(f + ".swap: " + swap_v2.error().message);
  if (*swap_v2) {
    // Swap first: with limit == swap, "0" must be in place before memory.max can be reached.
    bool harmless = **swap_v2 == -1 || **swap_v2 == 0;
    w.add("memory", "memory.swap.max", max_or_number(**swap_v2), f + ".swap", harmless);
  }
  if (limit != 0)
    w.add("memory", "memory.max", max_or_number(limit), f + ".limit");
  if (low != 0)
    w.add("memory", "memory.low", max_or_number(low), f + ".reservation");
  // kernel, kernelTCP (deprecated), swappiness, disableOOMKiller and useHierarchy are cgroup v1
  // knobs that v2 dropped; runc and crun ignore them on v2 as well.
  return {};
}

Status convert_cpu(const oci::CpuResources &c, Writes &w) {
  const std::string f = fmt::format("{}.cpu", kRes);
  if (c.realtime_runtime.value_or(0) != 0 || c.realtime_period.value_or(0) != 0)
    return failf("{}.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU bandwidth "
                 "(cpu.rt_runtime_us exists only in cgroup v1)",
                 f);
  if (uint64_t weight = cpu_shares_to_weight(c.shares.value_or(0)))
    w.add("cpu", "cpu.weight", std::to_string(weight), f + ".shares");
  if (c.idle)
    w.add("cpu", "cpu.idle", std::to_string(*c.idle), f + ".idle");
  int64_t quota = c.quota.value_or(0);
  uint64_t period = c.period.value_or(0);
  if (quota != 0 || period != 0) {
    std::string v = quota > 0 ? std::to_string(quota) : "max";
    if (period != 0)
      v += " " + std::to_string(period);
    w.add("cpu", "cpu.max", v, f + (quota != 0 ? ".quota" : ".period"));
  }
  // After cpu.max: the kernel refuses a burst larger than the quota in place.
  if (c.burst)
    w.add("cpu", "cpu.max.burst", std::to_string(*c.burst), f + ".burst");
  if (!c.cpus.empty())
    w.add("cpuset", "cpuset.cpus", c.cpus, f + ".cpus");
  if (!c.mems.empty())
    w.add("cpuset", "cpuset.mems", c.mems, f + ".mems");
  return {};
}

Status convert_block_io(const oci::BlockIoResources &b, const HostFeatures &host, Writes &w) {
  const std::string f = fmt::format("{}.blockIO", kRes);
  auto check_weight = [](uint64_t v, const std::string &field) -> Status {
    if (v < 10 || v > 1000)
      return failf("{}: {} is outside the blkio weight range 10-1000", field, v);
    return {};
  };
  if (b.weight.value_or(0) != 0) {
    BH_CHECK(check_weight(*b.weight, f + ".weight"));
    if (host.bfq)
      w.add("io", "io.bfq.weight", std::to_string(*b.weight), f + ".weight");
    else
      w.add("io", "io.weight", std::to_string(blkio_weight_to_io_weight(*b.weight)), f + ".weight");
  }
  for (size_t i = 0; i < b.weight_device.size(); ++i) {
    const auto &d = b.weight_device[i];
    std::string field = fmt::format("{}.weightDevice[{}]", f, i);
    // leafWeight has no v2 counterpart (there are no internal processes to weigh against).
    if (d.weight.value_or(0) == 0)
      continue;
    BH_CHECK(check_weight(*d.weight, field + ".weight"));
    if (host.bfq)
      w.add("io", "io.bfq.weight", fmt::format("{} {}", dev_key(d.major, d.minor), *d.weight), field);
    else
      w.add("io", "io.weight",
            fmt::format("{} {}", dev_key(d.major, d.minor), blkio_weight_to_io_weight(*d.weight)), field);
  }
  auto throttle = [&](const std::vector<oci::ThrottleDevice> &list, const char *json, const char *key) {
    for (size_t i = 0; i < list.size(); ++i) {
      const auto &d = list[i];
      // 0 removes the limit, as writing 0 to a blkio.throttle file does in v1 (v2 wants "max").
      std::string rate = d.rate == 0 ? "max" : std::to_string(d.rate);
      w.add("io", "io.max", fmt::format("{} {}={}", dev_key(d.major, d.minor), key, rate),
            fmt::format("{}.{}[{}]", f, json, i));
    }
  };
  throttle(b.throttle_read_bps_device, "throttleReadBpsDevice", "rbps");
  throttle(b.throttle_write_bps_device, "throttleWriteBpsDevice", "wbps");
  throttle(b.throttle_read_iops_device, "throttleReadIOPSDevice", "riops");
  throttle(b.throttle_write_iops_device, "throttleWriteIOPSDevice", "wiops");
  return {};
}

} // namespace

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0)
    return 0;
  if (shares <= 2)
    return 1;
  if (shares >= 262144)
    return 10000;
  // A parabola in log2(shares) through (2, 1), (1024, 100) and (262144, 10000).
  double l = std::log2(static_cast<double>(shares));
  double exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return static_cast<uint64_t>(std::ceil(std::pow(10.0, exponent)));
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
  if (weight == 0)
    return 0;
  if (weight < 10)
    return 1;
  return 1 + (weight - 10) * 9999 / 990;
}

Result<std::optional<int64_t>> memory_swap_to_v2(int64_t swap, int64_t limit) {
  // Unlimited memory with swap unset: both unlimited (what v1 did).
  if (limit == -1 && swap == 0)
    return std::optional<int64_t>(-1);
  if (swap == 0)
    return std::optional<int64_t>();
  if (swap == -1)
    return std::optional<int64_t>(-1);
  if (swap < -1)
    return failf("{} is invalid (use -1 for unlimited or memory+swap in bytes)", swap);
  if (limit == -1)
    return std::optional<int64_t>(swap); // no memory limit to subtract
  if (limit == 0)
    return fail("a swap limit needs a memory limit (memory.swap is memory+swap)");
  if (limit < 0)
    return failf("invalid memory limit {}", limit);
  if (swap < limit)
    return failf("memory+swap {} is below the memory limit {} (memory.swap is memory+swap)", swap, limit);
  return std::optional<int64_t>(swap - limit);
}

std::string max_or_number(int64_t v) { return v == -1 ? "max" : std::to_string(v); }

std::string controller_of(const std::string &file) {
  auto dot = file.find('.');
  return dot == std::string::npos ? std::string() : file.substr(0, dot);
}

Result<std::vector<FileWrite>> convert_resources(const oci::Resources &r, const HostFeatures &host) {
  Writes w;
  if (r.memory)
    BH_CHECK(convert_memory(*r.memory, w));
  if (r.cpu)
    BH_CHECK(convert_cpu(*r.cpu, w));
  if (r.pids && r.pids->limit.value_or(0) != 0) {
    // runc's rule: 0 leaves pids.max alone, any negative value means unlimited.
    int64_t limit = *r.pids->limit;
    w.add("pids", "pids.max", limit < 0 ? "max" : std::to_string(limit), fmt::format("{}.pids.limit", kRes));
  }
  if (r.block_io)
    BH_CHECK(convert_block_io(*r.block_io, host, w));
  for (size_t i = 0; i < r.hugepage_limits.size(); ++i) {
    const auto &h = r.hugepage_limits[i];
    std::string field = fmt::format("{}.hugepageLimits[{}]", kRes, i);
    if (!valid_page_size(h.page_size))
      return failf("{}.pageSize: {:?} is not a page size like \"2MB\" or \"1GB\"", field, h.page_size);
    w.add("hugetlb", fmt::format("hugetlb.{}.max", h.page_size), std::to_string(h.limit), field);
    if (host.hugetlb_rsvd)
      w.add("hugetlb", fmt::format("hugetlb.{}.rsvd.max", h.page_size), std::to_string(h.limit), field);
  }
  if (r.network && (r.network->class_id || !r.network->priorities.empty()))
    return failf("{}.network: net_cls and net_prio exist only in cgroup v1 (use an eBPF program or "
                 "nftables' cgroupv2 match instead)",
                 kRes);
  for (const auto &[device, limit] : r.rdma) {
    std::string field = fmt::format("{}.rdma[{:?}]", kRes, device);
    if (device.empty() || device.find_first_of(" \n") != std::string::npos)
      return failf("{}: not a valid RDMA device name", field);
    if (!limit.hca_handles && !limit.hca_objects)
      return failf("{}: sets neither hcaHandles nor hcaObjects", field);
    std::string v = device;
    if (limit.hca_handles)
      v += fmt::format(" hca_handle={}", *limit.hca_handles);
    if (limit.hca_objects)
      v += fmt::format(" hca_object={}", *limit.hca_objects);
    w.add("rdma", "rdma.max", v, field);
  }
  for (const auto &[key, value] : r.unified) {
    std::string field = fmt::format("{}.unified[{:?}]", kRes, key);
    std::string controller = controller_of(key);
    if (controller.empty() || key.find('/') != std::string::npos || key[0] == '.' || key.back() == '.')
      return failf("{}: not a cgroup interface file name (like \"memory.high\")", field);
    w.add(controller, key, value, field);
  }
  return w.take();
}

} // namespace bulkhead::cgroups
