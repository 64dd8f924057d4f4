// Namespaces joined by path, time namespace offsets, sysctls, oomScoreAdj and --no-pivot.
#include "harness.hpp"

#include <unistd.h>

using namespace bh_test;

namespace {

std::string ns_link(pid_t pid, const char *kind) {
  char buf[128] = {};
  auto path = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

class NamespacesTest : public BulkheadTest {
protected:
  // Namespaces of a new container that joins `pid`'s namespaces of the given kinds by path.
  static json joining(pid_t pid, const std::vector<std::string> &join,
                      const std::vector<std::string> &create) {
    json ns = json::array();
    for (const auto &t : join) {
      std::string file = t == "network" ? "net" : t == "mount" ? "mnt" : t;
      ns.push_back({{"type", t}, {"path", "/proc/" + std::to_string(pid) + "/ns/" + file}});
    }
    for (const auto &t : create)
      ns.push_back({{"type", t}});
    return ns;
  }
};

TEST_F(NamespacesTest, JoinsPidNetIpcUtsByPath) {
  auto a = make_bundle({"sleep", "100"});
  pid_t pa = create_and_start(a, "a");
  ASSERT_GT(pa, 0);
  auto r =
      run_container({"sh", "-c",
                     "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; readlink /proc/self/ns/net; "
                     "readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc"},
                    [&](json &c) {
                      c["linux"]["namespaces"] = joining(pa, {"pid", "network", "ipc", "uts"}, {"mount"});
                      c.erase("hostname");
                    });
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r;
  EXPECT_EQ(trim(lines[0]), "sleep 100") << "pid 1 is not the first container's init";
  EXPECT_NE(lines[1], "1") << "the joining process must not be pid 1 of the joined namespace";
  EXPECT_EQ(lines[2], ns_link(pa, "net"));
  EXPECT_EQ(lines[3], ns_link(pa, "uts"));
  EXPECT_EQ(lines[4], ns_link(pa, "ipc"));
}

TEST_F(NamespacesTest, JoinsUserNamespaceByPathAndCreatesTheRest) {
  if (!kernel_has_user_namespaces())
    GTEST_SKIP() << "no user namespaces";
  auto idmapped = [](json &c) {
    c["linux"]["namespaces"].push_back({{"type", "user"}});
    c["linux"]["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}});
    c["linux"]["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}});
  };
  auto a = make_bundle({"sleep", "100"}, idmapped);
  ASSERT_EQ(run_command({"chown", "-R", "200000:200000", rootfs(a)}).exit_code, 0);
  pid_t pa = create_and_start(a, "a");
  ASSERT_GT(pa, 0);
  auto b = make_bundle(
      {"sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/user; readlink /proc/self/ns/net"},
      [&](json &c) {
        c["linux"]["namespaces"] = joining(pa, {"user"}, {"pid", "network", "ipc", "uts", "mount"});
        c.erase("hostname");
      });
  ASSERT_EQ(run_command({"chown", "-R", "200000:200000", rootfs(b)}).exit_code, 0);
  auto r = bh({"run", "--bundle", b, "b"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  EXPECT_EQ(split_words(lines[0]), (std::vector<std::string>{"0", "200000", "65536"})) << r;
  EXPECT_EQ(lines[1], ns_link(pa, "user"));
  EXPECT_NE(lines[2], ns_link(pa, "net")) << "a new network namespace was asked for";
  EXPECT_NE(lines[2], ns_link(::getpid(), "net"));
}

TEST_F(NamespacesTest, BadNamespacePathFailsCleanly) {
  auto r = run_container({"true"}, [](json &c) {
    c["linux"]["namespaces"].push_back({{"type", "cgroup"}, {"path", "/proc/self/ns/net"}});
  });
  EXPECT_TRUE(failed_cleanly(r, "another type", ""));
}

TEST_F(NamespacesTest, TimeNamespaceOffsets) {
  if (ns_link(::getpid(), "time").empty())
    GTEST_SKIP() << "no time namespaces";
  double host_uptime = std::stod(read_file("/proc/uptime"));
  auto r = run_container({"cat", "/proc/uptime"}, [](json &c) {
    c["linux"]["namespaces"].push_back({{"type", "time"}});
    c["linux"]["timeOffsets"] = {{"boottime", {{"secs", 100000}, {"nanosecs", 0}}}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  double inside = std::stod(r.out);
  EXPECT_GT(inside, host_uptime + 99990) << r;
  EXPECT_LT(inside, host_uptime + 100000 + 60) << r;
}

TEST_F(NamespacesTest, SysctlAppliesInsideOnly) {
  auto host_before = read_file("/proc/sys/net/ipv4/ip_forward");
  auto r = run_container({"cat", "/proc/sys/net/ipv4/ip_forward"}, [](json &c) {
    c["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "1");
  EXPECT_EQ(read_file("/proc/sys/net/ipv4/ip_forward"), host_before);
}

TEST_F(NamespacesTest, OomScoreAdj) {
  auto r =
      run_container({"cat", "/proc/self/oom_score_adj"}, [](json &c) { c["process"]["oomScoreAdj"] = 321; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "321");
}

TEST_F(NamespacesTest, NoPivotUsesChroot) {
  auto bundle = make_bundle({"sh", "-c", "ls /bin/busybox && grep -c . /proc/self/mountinfo"});
  auto r = bh({"run", "--no-pivot", "--bundle", bundle, "np"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "/bin/busybox")) << r;
  EXPECT_TRUE(no_new_mounts());
}

} // namespace
