// linux.resources with real kernel effects (cgroup v2 with controllers: run in the VM through
// tests/vm/run-cgroup-tests.sh), and the clear error where a controller is missing.
#include <dirent.h>

#include <filesystem>
#include <tuple>

#include "cgroup_harness.hpp"

using namespace bh_test;

namespace {

class CgroupResources : public CgroupTest {
protected:
  // Waits until `pid` holds an inotify fd (bulkhead events is watching memory.events).
  static bool wait_for_inotify(pid_t pid) {
    return eventually([pid] {
      std::string dir = "/proc/" + std::to_string(pid) + "/fd";
      DIR *d = ::opendir(dir.c_str());
      if (!d)
        return false;
      bool found = false;
      while (struct dirent *e = ::readdir(d)) {
        char target[256] = {};
        std::string link = dir + "/" + e->d_name;
        if (::readlink(link.c_str(), target, sizeof target - 1) > 0 && contains(target, "inotify"))
          found = true;
      }
      ::closedir(d);
      return found;
    });
  }
};

TEST_F(CgroupResources, MemoryLimitOomKillsAndEventsReportIt) {
  std::string id = unique_id("oom");
  std::string bundle = make_bundle(
      {"sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$? > /dd-status; sleep 2"},
      [](json &c) {
        c["linux"]["resources"]["memory"] = {{"limit", 32 << 20}, {"swap", 32 << 20}};
      });
  ASSERT_GT(create(bundle, id), 0);
  EXPECT_EQ(cg_read(id, "memory.max"), "33554432");
  if (path_exists(cgroup_dir(id) + "/memory.swap.max")) {
    EXPECT_EQ(cg_read(id, "memory.swap.max"), "0");
  }

  Command events = bh_spawn({"events", "--interval", "1s", id}, {.stdin_data = {}, .timeout = 120s});
  ASSERT_TRUE(wait_for_inotify(events.pid())) << "bulkhead events never watched memory.events";
  auto started = bh({"start", id});
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(wait_for_status(id, "stopped", 60s), "stopped");
  auto r = events.wait();
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, R"({"type":"oom","id":")" + id + R"("})")) << r;
  EXPECT_TRUE(contains(r.out, R"({"type":"stats","id":")" + id + R"(","data":{)")) << r;
  EXPECT_EQ(read_file(rootfs(bundle) + "/dd-status"), "dd=137\n"); // SIGKILLed by the OOM killer
  EXPECT_GE(keyed_value(read_file(cgroup_dir(id) + "/memory.events"), "oom_kill"), 1);
}

TEST_F(CgroupResources, PidsLimitMakesForkFailInside) {
  // busybox sh gives up at the first failed fork: 3 sleeps start (4 processes with sh), the 4th fails.
  auto r = run_container({"sh", "-c", "for i in 1 2 3 4 5 6; do sleep 1 & echo started; done; wait"},
                         [](json &c) {
                           c["linux"]["resources"]["pids"] = {{"limit", 4}};
                         },
                         {.stdin_data = {}, .timeout = 60s});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "started\nstarted\nstarted\n") << r;
  EXPECT_TRUE(contains(r.err, "can't fork: Resource temporarily unavailable")) << r;
}

TEST_F(CgroupResources, CpuQuotaThrottlesAndSharesBecomeWeight) {
  std::string id = unique_id("cpu");
  std::string bundle = make_bundle({"sh", "-c", "while :; do :; done"}, [](json &c) {
    c["linux"]["resources"]["cpu"] = {{"shares", 512}, {"quota", 10000}, {"period", 100000}};
  });
  ASSERT_GT(create_and_start(bundle, id), 0);
  EXPECT_EQ(cg_read(id, "cpu.weight"), "59"); // ceil(10^((9^2 + 125*9)/612 - 7/34))
  EXPECT_EQ(cg_read(id, "cpu.max"), "10000 100000");
  EXPECT_TRUE(eventually([&] { return keyed_value(cg_read(id, "cpu.stat"), "nr_throttled") >= 3; }))
      << cg_read(id, "cpu.stat");
  auto stats = bh({"events", "--stats", id});
  ASSERT_TRUE(stats.ok()) << stats;
  auto j = json::parse(stats.out);
  EXPECT_GT(j["data"]["cpu"]["throttling"].value("throttledPeriods", 0), 0) << stats.out;
  EXPECT_GT(j["data"]["cpu"]["usage"].value("total", 0), 0) << stats.out;
}

TEST_F(CgroupResources, UpdateChangesLimitsOfARunningContainer) {
  std::string id = unique_id("upd");
  // A child shell forks a sleep every 0.1 s; at pids.max 1 its fork fails and it exits, while init
  // (which then only execs) keeps the container running.
  std::string bundle = make_bundle({"sh", "-c",
                                    "sh -c 'while :; do sleep 0.1; echo ok > /st; done' 2>/err; "
                                    "echo exited > /done; exec sleep 1000"},
                                   [](json &c) {
                                     c["linux"]["resources"]["pids"] = {{"limit", 100}};
                                     c["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
                                   });
  ASSERT_GT(create_and_start(bundle, id), 0);
  std::string st = rootfs(bundle) + "/st";
  ASSERT_TRUE(eventually([&] { return read_file(st) == "ok\n"; }));

  auto r = bh({"update", "--pids-limit", "1", "--memory", "48m", "--cpu-quota", "20000", "--cpu-period",
               "100000", "--cpu-share", "2048", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(cg_read(id, "pids.max"), "1");
  EXPECT_EQ(cg_read(id, "memory.max"), "50331648");
  EXPECT_EQ(cg_read(id, "cpu.max"), "20000 100000");
  EXPECT_EQ(cg_read(id, "cpu.weight"), "174");
  EXPECT_TRUE(eventually([&] { return path_exists(rootfs(bundle) + "/done"); }))
      << "fork still works at pids.max 1";
  EXPECT_TRUE(contains(read_file(rootfs(bundle) + "/err"), "can't fork"));
  EXPECT_EQ(status_of(id), "running");

  r = bh({"update", "--resources", "-", id}, {.stdin_data = std::string(R"({"pids":{"limit":50}})")});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(cg_read(id, "pids.max"), "50");

  // A period alone keeps the quota; memory-swap alone is relative to the limit in place.
  r = bh({"update", "--cpu-period", "50000", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(cg_read(id, "cpu.max"), "20000 50000");
  if (path_exists(cgroup_dir(id) + "/memory.swap.max")) {
    r = bh({"update", "--memory-swap", "96m", id});
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_EQ(cg_read(id, "memory.swap.max"), "50331648");
  }

  r = bh({"update", "-r", "-", id},
         {.stdin_data = std::string(R"({"memory":{"limit":4096,"checkBeforeUpdate":true}})")});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "linux.resources.memory.limit: 4096 is below the current usage")) << r;
  EXPECT_EQ(cg_read(id, "memory.max"), "50331648");

  r = bh({"update", "--memory", "lots", id});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "--memory: \"lots\" is not a size")) << r;
}

// The files of every other resource, with exact values (io.max only when the VM has a block device).
TEST_F(CgroupResources, EveryResourceLandsInItsFile) {
  std::string block_dev;
  std::error_code ec;
  for (auto &e : std::filesystem::directory_iterator("/sys/block", ec)) {
    block_dev = trim(read_file(e.path().string() + "/dev"));
    if (!block_dev.empty())
      break;
  }
  std::string id = unique_id("all");
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    auto &res = c["linux"]["resources"];
    res["memory"] = {{"limit", 64 << 20}, {"reservation", 8 << 20}, {"swap", 96 << 20}};
    res["cpu"] = {{"shares", 2}, {"quota", 50000}, {"period", 100000}, {"burst", 10000},
                  {"idle", 0},   {"cpus", "0"},    {"mems", "0"}};
    res["hugepageLimits"] = {{{"pageSize", "2MB"}, {"limit", 4 << 20}}};
    res["unified"] = {{"memory.high", "50331648"}, {"pids.max", "77"}};
    if (!block_dev.empty()) {
      auto colon = block_dev.find(':');
      int64_t major = std::stoll(block_dev.substr(0, colon)), minor = std::stoll(block_dev.substr(colon + 1));
      res["blockIO"] = {{"throttleReadBpsDevice", {{{"major", major}, {"minor", minor}, {"rate", 1048576}}}},
                        {"throttleWriteIOPSDevice", {{{"major", major}, {"minor", minor}, {"rate", 100}}}}};
    }
  });
  ASSERT_GT(create(bundle, id), 0);
  EXPECT_EQ(cg_read(id, "memory.max"), "67108864");
  EXPECT_EQ(cg_read(id, "memory.low"), "8388608");
  if (path_exists(cgroup_dir(id) + "/memory.swap.max")) {
    EXPECT_EQ(cg_read(id, "memory.swap.max"), "33554432");
  }
  EXPECT_EQ(cg_read(id, "memory.high"), "50331648");
  EXPECT_EQ(cg_read(id, "cpu.weight"), "1");
  EXPECT_EQ(cg_read(id, "cpu.max"), "50000 100000");
  EXPECT_EQ(cg_read(id, "cpu.max.burst"), "10000");
  EXPECT_EQ(cg_read(id, "cpu.idle"), "0");
  EXPECT_EQ(cg_read(id, "cpuset.cpus"), "0");
  EXPECT_EQ(cg_read(id, "cpuset.mems"), "0");
  EXPECT_EQ(cg_read(id, "hugetlb.2MB.max"), "4194304");
  EXPECT_EQ(cg_read(id, "pids.max"), "77");
  if (!block_dev.empty()) {
    EXPECT_EQ(cg_read(id, "io.max"), block_dev + " rbps=1048576 wbps=max riops=max wiops=100");
  } else {
    std::cerr << "[ info     ] no block device in /sys/block: io.max not checked\n";
  }
}

TEST_F(CgroupResources, StatsAndProcessesOfARunningContainer) {
  std::string id = unique_id("stats");
  std::string bundle = make_bundle({"sh", "-c", "sleep 100 & sleep 100 & wait"}, [](json &c) {
    c["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
    c["linux"]["resources"]["pids"] = {{"limit", 20}};
  });
  pid_t pid = create_and_start(bundle, id);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(eventually([&] { return split_lines(cg_read(id, "cgroup.procs")).size() == 3; }));

  auto r = bh({"events", "--stats", id});
  ASSERT_TRUE(r.ok()) << r;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["type"], "stats");
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["data"]["memory"]["usage"]["limit"], 64 << 20) << r.out;
  EXPECT_GT(j["data"]["memory"]["usage"].value("usage", 0), 0) << r.out;
  EXPECT_EQ(j["data"]["pids"]["current"], 3) << r.out;
  EXPECT_EQ(j["data"]["pids"]["limit"], 20) << r.out;

  r = bh({"ps", "--format", "json", id});
  ASSERT_TRUE(r.ok()) << r;
  auto pids = json::parse(r.out);
  ASSERT_EQ(pids.size(), 3u) << r.out;
  EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end()) << r.out;
  r = bh({"ps", id, "-o", "pid,comm"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(split_lines(r.out).size(), 4u) << r.out; // header + 3
  EXPECT_TRUE(contains(r.out, "sleep")) << r.out;

  r = bh({"kill", "--all", id, "KILL"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(eventually([&] { return cg_read(id, "cgroup.procs").empty(); }));
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
}

// On a host whose cgroup2 hierarchy lacks the controller (the hybrid dev hosts), every resource
// request is an error naming the field and the controller, saying the host has no cgroup v2
// controller for it and how to boot with the unified hierarchy; nothing is left behind.
class CgroupErrors : public CgroupBase {};

TEST_F(CgroupErrors, MissingControllerIsAClearError) {
  if (host_has_cgroup2_controllers())
    GTEST_SKIP() << "the memory controller is available here";
  bool hybrid = cgroup2_mount() == "/sys/fs/cgroup/unified";
  const std::vector<std::tuple<std::string, json, std::string>> requests = {
      {"memory",
       {{"limit", 1 << 26}},
       "linux.resources.memory.limit: this host has no cgroup v2 memory controller"},
      {"pids", {{"limit", 10}}, "linux.resources.pids.limit: this host has no cgroup v2 pids controller"},
      {"cpu", {{"shares", 512}}, "linux.resources.cpu.shares: this host has no cgroup v2 cpu controller"},
      {"blockIO",
       {{"weight", 500}},
       "linux.resources.blockIO.weight: this host has no cgroup v2 io controller"},
  };
  for (const auto &[key, value, text] : requests) {
    std::string id = unique_id("no" + key);
    std::string bundle = make_bundle({"true"}, [&](json &c) { c["linux"]["resources"][key] = value; });
    auto r = bh({"run", "--bundle", bundle, id});
    EXPECT_TRUE(failed_cleanly(r, text, id)) << key;
    if (hybrid) {
      EXPECT_TRUE(contains(r.err, "v1/v2 hybrid") && contains(r.err, "systemd.unified_cgroup_hierarchy=1"))
          << r;
    }
    EXPECT_FALSE(path_exists(cgroup_dir(id)));
  }
}

TEST_F(CgroupErrors, UnknownUnifiedKeyIsAnError) {
  std::string id = unique_id("unified");
  std::string bundle = make_bundle({"true"}, [](json &c) {
    c["linux"]["resources"]["unified"] = {{"cgroup.nonsense", "1"}};
  });
  auto r = bh({"run", "--bundle", bundle, id});
  EXPECT_TRUE(failed_cleanly(r,
                             "linux.resources.unified[\"cgroup.nonsense\"]: " + cgroup_dir(id) +
                                 "/cgroup.nonsense is not a cgroup interface file",
                             id));
  EXPECT_FALSE(path_exists(cgroup_dir(id)));
}

} // namespace
