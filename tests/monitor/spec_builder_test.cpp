// build_system_spec: the system-container spec (no containers run here).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "daemon/spec_builder.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"

namespace {

using bulkhead::daemon::build_system_spec;
using bulkhead::daemon::ContainerConfig;
using bulkhead::daemon::SpecContext;
using nlohmann::json;

const json *find_mount(const json &spec, const std::string &dest) {
  for (const auto &m : spec["mounts"])
    if (m["destination"] == dest)
      return &m;
  return nullptr;
}

bool contains(const json &array, const std::string &value) {
  for (const auto &v : array)
    if (v == value)
      return true;
  return false;
}

TEST(MonitorSpecBuilder, SystemContainerDefaultsParseAndValidate) {
  ContainerConfig c;
  c.name = "web1";
  c.env = {"TERM=xterm", "A=b"};
  json spec = build_system_spec(c, SpecContext{"/srv/web1/rootfs", "/bulkhead/web1", "/sbin/init", ""});
  auto parsed = bulkhead::oci::parse_spec(spec.dump());
  ASSERT_TRUE(parsed) << parsed.error().text();
  ASSERT_TRUE(bulkhead::oci::validate_spec(*parsed)) << spec.dump(2);

  EXPECT_EQ(spec["hostname"], "web1");
  EXPECT_EQ(spec["root"]["path"], "/srv/web1/rootfs");
  EXPECT_EQ(spec["root"]["readonly"], false);
  const json &p = spec["process"];
  EXPECT_EQ(p["args"], json::array({"/sbin/init"}));
  EXPECT_EQ(p["terminal"], true);
  EXPECT_EQ(p["noNewPrivileges"], false);
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_TRUE(contains(p["env"], "container=bulkhead"));
  EXPECT_TRUE(contains(p["env"], "TERM=xterm")); // the config's value replaces the default
  EXPECT_FALSE(contains(p["env"], "TERM=linux"));
  EXPECT_TRUE(contains(p["env"], "A=b"));
  const json &caps = p["capabilities"]["bounding"];
  EXPECT_TRUE(contains(caps, "CAP_SYS_ADMIN"));
  EXPECT_TRUE(contains(caps, "CAP_SYS_BOOT"));
  EXPECT_TRUE(contains(caps, "CAP_NET_ADMIN"));
  for (const char *dropped :
       {"CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_RAWIO", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE"})
    EXPECT_FALSE(contains(caps, dropped)) << dropped;

  std::vector<std::string> ns;
  for (const auto &n : spec["linux"]["namespaces"])
    ns.push_back(n["type"]);
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "mount", "ipc", "uts", "cgroup", "network"}));
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/bulkhead/web1");
  const json *cg = find_mount(spec, "/sys/fs/cgroup");
  ASSERT_NE(cg, nullptr);
  EXPECT_EQ((*cg)["type"], "cgroup2");
  EXPECT_TRUE(contains((*cg)["options"], "rw"));
  for (const char *d : {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"})
    EXPECT_NE(find_mount(spec, d), nullptr) << d;
  // On the container's disk, synced before a migration's freeze, not a tmpfs CRIU copies inside it.
  EXPECT_EQ(find_mount(spec, "/tmp"), nullptr);
  EXPECT_EQ(find_mount(spec, "/run/lock"), nullptr);
  EXPECT_EQ(find_mount(spec, "/proc/meminfo"), nullptr);
  EXPECT_FALSE(spec["linux"]["resources"].contains("memory"));
  EXPECT_EQ(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
}

TEST(MonitorSpecBuilder, LimitsAndExplicitInit) {
  ContainerConfig c;
  c.name = "db";
  c.hostname = "db.example";
  c.init = {"/lib/systemd/systemd", "--log-level=info"};
  c.limits.memory_bytes = 256ull << 20;
  c.limits.cpus = 1.5;
  c.limits.pids = 500;
  json spec = build_system_spec(c, SpecContext{"/r", "/bulkhead/db", "/sbin/init", ""});
  EXPECT_EQ(spec["hostname"], "db.example");
  EXPECT_EQ(spec["process"]["args"], json::array({"/lib/systemd/systemd", "--log-level=info"}));
  const json &r = spec["linux"]["resources"];
  EXPECT_EQ(r["memory"]["limit"], 256ull << 20);
  EXPECT_EQ(r["cpu"]["quota"], 150000);
  EXPECT_EQ(r["cpu"]["period"], 100000);
  EXPECT_EQ(r["pids"]["limit"], 500);
  ASSERT_TRUE(bulkhead::oci::parse_spec(spec.dump()));
}

TEST(MonitorSpecBuilder, LxcfsBindsOnlyForFilesThatExist) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("bh-lxcfs-" + std::to_string(::getpid()));
  fs::create_directories(dir / "proc");
  fs::create_directories(dir / "sys/devices/system/cpu");
  for (const char *f : {"meminfo", "uptime", "cpuinfo"})
    std::ofstream(dir / "proc" / f) << "x";
  std::ofstream(dir / "sys/devices/system/cpu/online") << "0";
  ContainerConfig c;
  c.name = "x";
  json spec = build_system_spec(c, SpecContext{"/r", "", "/sbin/init", dir.string()});
  const json *meminfo = find_mount(spec, "/proc/meminfo");
  ASSERT_NE(meminfo, nullptr);
  EXPECT_EQ((*meminfo)["source"], (dir / "proc/meminfo").string());
  EXPECT_TRUE(contains((*meminfo)["options"], "bind"));
  EXPECT_NE(find_mount(spec, "/proc/uptime"), nullptr);
  EXPECT_EQ(find_mount(spec, "/proc/swaps"), nullptr); // absent in this fake lxcfs
  EXPECT_NE(find_mount(spec, "/sys/devices/system/cpu/online"), nullptr);
  // Nothing masks or freezes what lxcfs provides.
  for (const auto &p : spec["linux"]["maskedPaths"])
    EXPECT_TRUE(p != "/proc/meminfo" && p != "/proc/uptime" && p != "/sys/fs/cgroup") << p;
  fs::remove_all(dir);
}

} // namespace
