// linux.resources -> cgroup v2 files: every conversion rule with exact values.
#include <gtest/gtest.h>

#include "cgroups/convert.hpp"
#include "cgroups/resources.hpp"

namespace bulkhead::cgroups {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// (file, value) of each write, in order; "error: <message>" when the conversion fails.
Pairs files(const oci::Resources &r, const HostFeatures &host = {}) {
  auto w = convert_resources(r, host);
  if (!w)
    return {{"error", w.error().message}};
  Pairs out;
  for (const auto &x : *w)
    out.emplace_back(x.file, x.value);
  return out;
}

std::string error_of(const oci::Resources &r) {
  auto w = convert_resources(r);
  return w ? "<ok>" : w.error().message;
}

TEST(CgroupsConvert, CpuSharesToWeightMatchesRuncAndCrun) {
  // The fixed points of the curve, and the values opencontainers/cgroups tests.
  EXPECT_EQ(cpu_shares_to_weight(0), 0u); // unset
  EXPECT_EQ(cpu_shares_to_weight(1), 1u);
  EXPECT_EQ(cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cpu_shares_to_weight(3), 2u);
  EXPECT_EQ(cpu_shares_to_weight(1024), 100u);
  EXPECT_EQ(cpu_shares_to_weight(262143), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(262145), 10000u);
  // In between: ceil(10^((l^2 + 125 l) / 612 - 7/34)), l = log2(shares).
  EXPECT_EQ(cpu_shares_to_weight(10), 4u);
  EXPECT_EQ(cpu_shares_to_weight(100), 17u);
  EXPECT_EQ(cpu_shares_to_weight(512), 59u);
  EXPECT_EQ(cpu_shares_to_weight(1023), 100u);
  EXPECT_EQ(cpu_shares_to_weight(1025), 101u);
  EXPECT_EQ(cpu_shares_to_weight(2048), 174u);
  EXPECT_EQ(cpu_shares_to_weight(4096), 303u);
}

TEST(CgroupsConvert, BlkioWeightToIoWeight) {
  EXPECT_EQ(blkio_weight_to_io_weight(0), 0u);
  EXPECT_EQ(blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(blkio_weight_to_io_weight(100), 910u);
  EXPECT_EQ(blkio_weight_to_io_weight(500), 4950u);
  EXPECT_EQ(blkio_weight_to_io_weight(1000), 10000u);
}

std::string swap(int64_t swap, int64_t limit) {
  auto r = memory_swap_to_v2(swap, limit);
  if (!r)
    return "error: " + r.error().message;
  return *r ? std::to_string(**r) : "unset";
}

TEST(CgroupsConvert, MemorySwapIsSwapMinusLimit) {
  EXPECT_EQ(swap(0, 0), "unset");
  EXPECT_EQ(swap(0, 1000), "unset");
  EXPECT_EQ(swap(0, -1), "-1"); // unlimited memory, swap unset: both unlimited
  EXPECT_EQ(swap(-1, 0), "-1");
  EXPECT_EQ(swap(-1, -1), "-1");
  EXPECT_EQ(swap(-1, 1000), "-1");
  EXPECT_EQ(swap(1000, 1000), "0"); // no swap at all
  EXPECT_EQ(swap(500, 200), "300");
  EXPECT_EQ(swap(500, -1), "500");
  EXPECT_EQ(swap(300, 400),
            "error: memory+swap 300 is below the memory limit 400 (memory.swap is memory+swap)");
  EXPECT_EQ(swap(100, 0), "error: a swap limit needs a memory limit (memory.swap is memory+swap)");
  EXPECT_EQ(swap(-2, 0), "error: -2 is invalid (use -1 for unlimited or memory+swap in bytes)");
}

TEST(CgroupsConvert, Memory) {
  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = 104857600;
  r.memory->reservation = 52428800;
  r.memory->swap = 209715200;
  EXPECT_EQ(
      files(r),
      (Pairs{{"memory.swap.max", "104857600"}, {"memory.max", "104857600"}, {"memory.low", "52428800"}}));
  r.memory->limit = -1;
  r.memory->swap.reset();
  r.memory->reservation.reset();
  EXPECT_EQ(files(r), (Pairs{{"memory.swap.max", "max"}, {"memory.max", "max"}}));
  r.memory->limit = 1 << 20;
  r.memory->swap = 1 << 20;
  EXPECT_EQ(files(r), (Pairs{{"memory.swap.max", "0"}, {"memory.max", "1048576"}}));
  auto w = convert_resources(r);
  ASSERT_TRUE(w);
  EXPECT_TRUE((*w)[0].skip_if_absent); // "0" without swap accounting is what the host does anyway
  EXPECT_FALSE((*w)[1].skip_if_absent);
  EXPECT_EQ((*w)[1].controller, "memory");
  EXPECT_EQ((*w)[1].field, "linux.resources.memory.limit");
  // v1-only knobs write nothing.
  oci::Resources v1;
  v1.memory.emplace();
  v1.memory->kernel = 1 << 20;
  v1.memory->kernel_tcp = 1 << 20;
  v1.memory->swappiness = 10;
  v1.memory->disable_oom_killer = true;
  EXPECT_EQ(files(v1), Pairs{});
}

TEST(CgroupsConvert, MemoryErrors) {
  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = -5;
  EXPECT_EQ(error_of(r),
            "linux.resources.memory.limit: -5 is invalid (use -1 for unlimited or a positive value)");
  r.memory->limit = 100;
  r.memory->swap = 50;
  EXPECT_EQ(error_of(r),
            "linux.resources.memory.swap: memory+swap 50 is below the memory limit 100 (memory.swap "
            "is memory+swap)");
}

TEST(CgroupsConvert, Cpu) {
  oci::Resources r;
  r.cpu.emplace();
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->burst = 10000;
  r.cpu->idle = 0;
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  EXPECT_EQ(files(r), (Pairs{{"cpu.weight", "100"},
                             {"cpu.idle", "0"},
                             {"cpu.max", "50000 100000"},
                             {"cpu.max.burst", "10000"},
                             {"cpuset.cpus", "0-1"},
                             {"cpuset.mems", "0"}}));
  auto w = convert_resources(r);
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)[4].controller, "cpuset");
  EXPECT_EQ((*w)[2].field, "linux.resources.cpu.quota");
}

TEST(CgroupsConvert, CpuMaxRules) {
  auto cpu_max = [](std::optional<int64_t> quota, std::optional<uint64_t> period) {
    oci::Resources r;
    r.cpu.emplace();
    r.cpu->quota = quota;
    r.cpu->period = period;
    return files(r);
  };
  EXPECT_EQ(cpu_max(20000, std::nullopt), (Pairs{{"cpu.max", "20000"}})); // the period in place stays
  EXPECT_EQ(cpu_max(-1, std::nullopt), (Pairs{{"cpu.max", "max"}}));
  EXPECT_EQ(cpu_max(-1, 50000), (Pairs{{"cpu.max", "max 50000"}}));
  EXPECT_EQ(cpu_max(std::nullopt, 50000), (Pairs{{"cpu.max", "max 50000"}}));
  EXPECT_EQ(cpu_max(0, 0), Pairs{});
  EXPECT_EQ(cpu_max(std::nullopt, std::nullopt), Pairs{});
}

TEST(CgroupsConvert, CpuRealtimeIsAnError) {
  oci::Resources r;
  r.cpu.emplace();
  r.cpu->realtime_runtime = 950000;
  EXPECT_EQ(error_of(r), "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU "
                         "bandwidth (cpu.rt_runtime_us exists only in cgroup v1)");
}

TEST(CgroupsConvert, Pids) {
  auto pids = [](int64_t limit) {
    oci::Resources r;
    r.pids.emplace();
    r.pids->limit = limit;
    return files(r);
  };
  EXPECT_EQ(pids(32), (Pairs{{"pids.max", "32"}}));
  EXPECT_EQ(pids(-1), (Pairs{{"pids.max", "max"}}));
  EXPECT_EQ(pids(0), Pairs{});
}

TEST(CgroupsConvert, BlockIo) {
  oci::Resources r;
  r.block_io.emplace();
  r.block_io->weight = 500;
  r.block_io->weight_device = {{8, 0, 100, std::nullopt}, {8, 16, std::nullopt, 200}};
  r.block_io->throttle_read_bps_device = {{8, 0, 1048576}};
  r.block_io->throttle_write_bps_device = {{8, 0, 0}};
  r.block_io->throttle_read_iops_device = {{8, 0, 100}};
  r.block_io->throttle_write_iops_device = {{253, 1, 50}};
  EXPECT_EQ(files(r), (Pairs{{"io.weight", "4950"},
                             {"io.weight", "8:0 910"},
                             {"io.max", "8:0 rbps=1048576"},
                             {"io.max", "8:0 wbps=max"},
                             {"io.max", "8:0 riops=100"},
                             {"io.max", "253:1 wiops=50"}}));
  HostFeatures bfq;
  bfq.bfq = true;
  r.block_io->throttle_read_bps_device.clear();
  r.block_io->throttle_write_bps_device.clear();
  r.block_io->throttle_read_iops_device.clear();
  r.block_io->throttle_write_iops_device.clear();
  EXPECT_EQ(files(r, bfq), (Pairs{{"io.bfq.weight", "500"}, {"io.bfq.weight", "8:0 100"}}));
  r.block_io->weight = 5;
  EXPECT_EQ(error_of(r), "linux.resources.blockIO.weight: 5 is outside the blkio weight range 10-1000");
}

TEST(CgroupsConvert, HugepagesRdmaUnified) {
  oci::Resources r;
  r.hugepage_limits = {{"2MB", 4194304}, {"1GB", 0}};
  EXPECT_EQ(files(r), (Pairs{{"hugetlb.2MB.max", "4194304"}, {"hugetlb.1GB.max", "0"}}));
  HostFeatures rsvd;
  rsvd.hugetlb_rsvd = true;
  r.hugepage_limits.resize(1);
  EXPECT_EQ(files(r, rsvd), (Pairs{{"hugetlb.2MB.max", "4194304"}, {"hugetlb.2MB.rsvd.max", "4194304"}}));
  r.hugepage_limits = {{"2M", 1}};
  EXPECT_EQ(error_of(r),
            "linux.resources.hugepageLimits[0].pageSize: \"2M\" is not a page size like \"2MB\" or \"1GB\"");

  oci::Resources rd;
  rd.rdma["mlx5_0"] = oci::RdmaLimit{3, 1000};
  rd.rdma["mlx4_1"] = oci::RdmaLimit{std::nullopt, 7};
  EXPECT_EQ(files(rd), (Pairs{{"rdma.max", "mlx4_1 hca_object=7"},
                              {"rdma.max", "mlx5_0 hca_handle=3 hca_object=1000"}}));
  rd.rdma["x"] = oci::RdmaLimit{};
  EXPECT_EQ(error_of(rd), "linux.resources.rdma[\"x\"]: sets neither hcaHandles nor hcaObjects");

  oci::Resources u;
  u.pids.emplace();
  u.pids->limit = 10;
  u.unified = {{"memory.high", "50M"}, {"pids.max", "20"}};
  auto w = convert_resources(u);
  ASSERT_TRUE(w);
  EXPECT_EQ(files(u),
            (Pairs{{"pids.max", "10"}, {"memory.high", "50M"}, {"pids.max", "20"}})); // unified wins
  EXPECT_EQ((*w)[1].controller, "memory");
  EXPECT_EQ((*w)[1].field, "linux.resources.unified[\"memory.high\"]");
  for (std::string bad : {"../cgroup.procs", "memoryhigh", ".x", "memory.", "a/b.c"}) {
    oci::Resources b;
    b.unified = {{bad, "1"}};
    EXPECT_NE(error_of(b).find("not a cgroup interface file name"), std::string::npos) << bad;
  }
}

TEST(CgroupsConvert, NetworkIsAnError) {
  oci::Resources r;
  r.network.emplace();
  r.network->class_id = 0x100001;
  EXPECT_EQ(error_of(r), "linux.resources.network: net_cls and net_prio exist only in cgroup v1 (use an eBPF "
                         "program or nftables' cgroupv2 match instead)");
}

TEST(CgroupsConvert, ControllerOf) {
  EXPECT_EQ(controller_of("memory.swap.max"), "memory");
  EXPECT_EQ(controller_of("cgroup.freeze"), "cgroup");
  EXPECT_EQ(controller_of("nodot"), "");
}

TEST(CgroupsConvert, RequestsControllers) {
  EXPECT_FALSE(requests_controllers(std::nullopt));
  oci::Resources only_devices;
  only_devices.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}};
  EXPECT_FALSE(requests_controllers(only_devices));
  oci::Resources mem;
  mem.memory.emplace();
  mem.memory->limit = 1 << 20;
  EXPECT_TRUE(requests_controllers(mem));
}

TEST(CgroupsConvert, ParseControllerList) {
  EXPECT_EQ(parse_controller_list("cpuset cpu io memory\n"),
            (std::set<std::string>{"cpuset", "cpu", "io", "memory"}));
  EXPECT_TRUE(parse_controller_list("\n").empty());
}

TEST(CgroupsConvert, EffectiveDeviceRules) {
  // linux.devices play no part (as in runc): only the spec's rules and the defaults.
  std::vector<oci::DeviceCgroupRule> spec = {{false, "a", std::nullopt, std::nullopt, "rwm"}};
  auto rules = effective_device_rules(spec);
  ASSERT_EQ(rules.size(), 1u + 2 + 8 + 1);
  EXPECT_FALSE(rules[0].allow);
  EXPECT_EQ(rules[1].type, "c");
  EXPECT_EQ(rules[1].access, "m");
  EXPECT_FALSE(rules[1].major);
  EXPECT_EQ(rules.back().major, 136);
  EXPECT_FALSE(rules.back().minor);
}

} // namespace
} // namespace bulkhead::cgroups
