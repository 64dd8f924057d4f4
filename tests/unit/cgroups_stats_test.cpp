// Parsing cgroup v2 stat files and runc's `events` JSON shape.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bulkhead/stats.hpp"
#include "cgroups/stats.hpp"

namespace bulkhead::cgroups {
namespace {

TEST(CgroupsStats, ParseKeyed) {
  auto m = parse_keyed("usage_usec 1200\nuser_usec 1000\nsystem_usec 200\nmax max\nbad\n");
  EXPECT_EQ(m["usage_usec"], 1200u);
  EXPECT_EQ(m["system_usec"], 200u);
  EXPECT_EQ(m["max"], UINT64_MAX);
  EXPECT_EQ(m.count("bad"), 0u);
}

TEST(CgroupsStats, OomEventJson) {
  ContainerEvent e{"oom", "c1", std::nullopt};
  EXPECT_EQ(event_to_json(e), R"({"type":"oom","id":"c1"})");
}

TEST(CgroupsStats, StatsEventJsonHasRuncShape) {
  ContainerStats s;
  s.cpu.total_ns = 5000;
  s.cpu.user_ns = 3000;
  s.cpu.kernel_ns = 2000;
  s.cpu.periods = 10;
  s.cpu.throttled_periods = 4;
  s.cpu.throttled_ns = 900;
  MemoryStats m;
  m.cache = 4096;
  m.usage = {1048576, 8192, 16384, 2};
  m.raw = {{"anon", 4096}, {"file", 4096}};
  s.memory = m;
  s.pids = {3, 32};
  s.blkio.service_bytes = {{8, 0, "Read", 512}, {8, 0, "Write", 0}};
  s.hugetlb["2MB"] = {0, 0, 1};
  auto j = nlohmann::json::parse(event_to_json({"stats", "c1", s}));
  EXPECT_EQ(j["type"], "stats");
  EXPECT_EQ(j["id"], "c1");
  const auto &d = j["data"];
  EXPECT_EQ(d["cpu"], nlohmann::json::parse(R"({"usage":{"total":5000,"kernel":2000,"user":3000},
      "throttling":{"periods":10,"throttledPeriods":4,"throttledTime":900}})"));
  EXPECT_EQ(d["memory"]["usage"],
            nlohmann::json::parse(R"({"limit":1048576,"usage":8192,"max":16384,"failcnt":2})"));
  EXPECT_EQ(d["memory"]["swap"], nlohmann::json::parse(R"({"limit":0,"failcnt":0})"));
  EXPECT_EQ(d["memory"]["cache"], 4096);
  EXPECT_EQ(d["memory"]["raw"]["anon"], 4096);
  EXPECT_EQ(d["pids"], nlohmann::json::parse(R"({"current":3,"limit":32})"));
  EXPECT_EQ(
      d["blkio"],
      nlohmann::json::parse(
          R"({"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":512},{"major":8,"op":"Write"}]})"));
  EXPECT_EQ(d["hugetlb"], nlohmann::json::parse(R"({"2MB":{"failcnt":1}})"));
  EXPECT_TRUE(d["network_interfaces"].is_null());
  EXPECT_TRUE(d["cpuset"].is_object());
  EXPECT_TRUE(d["intel_rdt"].is_object());
}

} // namespace
} // namespace bulkhead::cgroups
