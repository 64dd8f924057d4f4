// The systemd cgroup driver's pure part: linux.cgroupsPath "slice:prefix:name" (runc's rules) and
// the unit properties of linux.resources. The bus itself is exercised in the systemd VM
// (tests/systemd/run-vm-systemd-cgroup.sh).
#include <gtest/gtest.h>

#include "cgroups/cgroup.hpp"
#include "cgroups/systemd_scope.hpp"

namespace bulkhead::cgroups {
namespace {

std::string parse(const std::string &path) {
  auto p = parse_systemd_path(path, "c1");
  return p ? p->slice + " " + (p->slice_dir.empty() ? "<root>" : p->slice_dir) + " " + p->unit
           : "error: " + p.error().message;
}

std::string expand(const std::string &slice) {
  auto r = expand_slice(slice);
  return r ? (r->empty() ? "<root>" : *r) : "error: " + r.error().message;
}

TEST(SystemdPath, EmptyIsSystemSliceBulkheadId) {
  EXPECT_EQ(parse(""), "system.slice /system.slice bulkhead-c1.scope");
}

TEST(SystemdPath, ThreeFields) {
  EXPECT_EQ(parse("machine.slice:libpod:abc"), "machine.slice /machine.slice libpod-abc.scope");
  EXPECT_EQ(parse(":cri-containerd:abc"), "system.slice /system.slice cri-containerd-abc.scope");
  EXPECT_EQ(parse("user.slice::abc"), "user.slice /user.slice abc.scope");
  EXPECT_EQ(parse("-.slice:p:abc"), "-.slice <root> p-abc.scope");
}

TEST(SystemdPath, NestedSlicesExpandOneLevelPerDash) {
  EXPECT_EQ(parse("kubepods-burstable-pod1.slice:cri-containerd:abc"),
            "kubepods-burstable-pod1.slice /kubepods.slice/kubepods-burstable.slice/"
            "kubepods-burstable-pod1.slice cri-containerd-abc.scope");
  EXPECT_EQ(expand("a-b.slice"), "/a.slice/a-b.slice");
  EXPECT_EQ(expand("a.slice"), "/a.slice");
  EXPECT_EQ(expand("-.slice"), "<root>");
}

TEST(SystemdPath, BadSlicesAreErrorsNamingTheValue) {
  EXPECT_EQ(expand("a--b.slice"), "error: slice \"a--b.slice\": empty part between dashes (systemd refuses "
                                  "such a slice name)");
  EXPECT_EQ(expand("-a.slice"), "error: slice \"-a.slice\": empty part between dashes (systemd refuses such "
                                "a slice name)");
  EXPECT_EQ(expand("a-.slice"), "error: slice \"a-.slice\": empty part between dashes (systemd refuses such "
                                "a slice name)");
  EXPECT_EQ(expand("system"), "error: slice \"system\": a systemd slice name ends in \".slice\"");
  EXPECT_EQ(expand(".slice"), "error: slice \".slice\": a systemd slice name ends in \".slice\"");
  EXPECT_EQ(expand("a/b.slice"), "error: slice \"a/b.slice\": may not contain \"/\" or \"..\"");
  EXPECT_EQ(expand("..slice"), "error: slice \"..slice\": may not contain \"/\" or \"..\"");
  EXPECT_EQ(parse("../x.slice:p:n"),
            "error: linux.cgroupsPath \"../x.slice:p:n\": slice \"../x.slice\": may not contain \"/\" or "
            "\"..\" (the systemd cgroup driver expects \"slice:prefix:name\", e.g. "
            "\"system.slice:bulkhead:c1\")");
  EXPECT_NE(parse("sys tem.slice:p:n").find("only letters, digits"), std::string::npos);
}

TEST(SystemdPath, NotThreeFieldsOrBadNamesAreErrors) {
  const std::string hint =
      " (the systemd cgroup driver expects \"slice:prefix:name\", e.g. \"system.slice:bulkhead:c1\")";
  EXPECT_EQ(parse("/bulkhead/c1"),
            "error: linux.cgroupsPath \"/bulkhead/c1\": not three colon-separated fields" + hint);
  EXPECT_EQ(parse("a.slice:b"),
            "error: linux.cgroupsPath \"a.slice:b\": not three colon-separated fields" + hint);
  EXPECT_EQ(parse("a.slice:b:c:d"),
            "error: linux.cgroupsPath \"a.slice:b:c:d\": not three colon-separated fields" + hint);
  EXPECT_EQ(parse("a.slice:b:"), "error: linux.cgroupsPath \"a.slice:b:\": the name field is empty" + hint);
  EXPECT_EQ(
      parse("a.slice:p:x.slice"),
      "error: linux.cgroupsPath \"a.slice:p:x.slice\": name \"x.slice\": a slice as the container's own "
      "unit is not supported, only a scope" +
          hint);
  EXPECT_EQ(parse("a.slice:p:x/y"), "error: linux.cgroupsPath \"a.slice:p:x/y\": only letters, digits and "
                                    "\"-_.\\@\" are allowed in the prefix and the name" +
                                        hint);
  EXPECT_NE(parse("a.slice:p:" + std::string(260, 'x')).find("longer than systemd's 255"), std::string::npos);
}

TEST(SystemdProperties, MemoryCpuPidsAsRuncConvertsThem) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 64 << 20;
  r.memory->reservation = 32 << 20;
  r.memory->swap = 96 << 20; // memory+swap: 32 MiB of swap
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.pids = oci::PidsResources{};
  r.pids->limit = 20;
  auto props = systemd_properties(r);
  ASSERT_TRUE(props) << props.error().text();
  std::vector<UnitProperty> want = {
      {"MemoryMax", 64 << 20}, {"MemoryLow", 32 << 20},        {"MemorySwapMax", 32 << 20},
      {"CPUWeight", 100},      {"CPUQuotaPerSecUSec", 500000}, {"CPUQuotaPeriodUSec", 100000},
      {"TasksMax", 20}};
  EXPECT_EQ(*props, want);
}

TEST(SystemdProperties, UnlimitedIsInfinityAndQuotaRoundsUpTo10ms) {
  constexpr uint64_t inf = UINT64_MAX;
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = -1;
  r.cpu = oci::CpuResources{};
  r.cpu->quota = 12345; // 12.345 ms per 100 ms = 123450 us/s -> 130000
  r.pids = oci::PidsResources{};
  r.pids->limit = -1;
  auto props = systemd_properties(r);
  ASSERT_TRUE(props) << props.error().text();
  std::vector<UnitProperty> want = {{"MemoryMax", inf}, {"CPUQuotaPerSecUSec", 130000}, {"TasksMax", inf}};
  EXPECT_EQ(*props, want);

  oci::Resources unlimited_cpu;
  unlimited_cpu.cpu = oci::CpuResources{};
  unlimited_cpu.cpu->quota = -1;
  unlimited_cpu.cpu->period = 50000;
  props = systemd_properties(unlimited_cpu);
  ASSERT_TRUE(props);
  want = {{"CPUQuotaPerSecUSec", inf}, {"CPUQuotaPeriodUSec", 50000}};
  EXPECT_EQ(*props, want);
}

TEST(SystemdProperties, NothingSetNothingSentAndBadSwapFails) {
  auto props = systemd_properties(oci::Resources{});
  ASSERT_TRUE(props);
  EXPECT_TRUE(props->empty());
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 64 << 20;
  r.memory->swap = 32 << 20; // memory+swap below memory: refused as by the cgroupfs driver
  EXPECT_FALSE(systemd_properties(r));
}

TEST(SystemdCgroupOfPid, ReadsTheUnifiedLine) {
  EXPECT_EQ(*unified_cgroup_from("0::/system.slice/bulkhead-c1.scope\n", "x"),
            "/system.slice/bulkhead-c1.scope");
  EXPECT_EQ(*unified_cgroup_from("1:name=systemd:/a\n0::/b.scope\n", "x"), "/b.scope");
  EXPECT_EQ(unified_cgroup_from("1:name=systemd:/a\n", "/proc/1/cgroup").error().message,
            "/proc/1/cgroup: no cgroup v2 (\"0::\") line");
}

} // namespace
} // namespace bulkhead::cgroups
