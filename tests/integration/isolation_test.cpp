// Namespaces: the ones in linux.namespaces are new, the others are shared with the host.
#include "harness.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

using namespace bh_test;

namespace {

class IsolationTest : public BulkheadTest {
protected:
  // "<ns>:[inode]" for each name, as the container's init sees /proc/self/ns/<ns>.
  std::map<std::string, std::string> container_namespaces(const std::vector<std::string> &names,
                                                          const Mutator &mutate = {}) {
    std::string script;
    for (auto &n : names)
      script += "readlink /proc/self/ns/" + n + "; ";
    auto r = run_container({"sh", "-c", script}, mutate);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::map<std::string, std::string> out;
    auto lines = split_lines(r.out);
    for (size_t i = 0; i < names.size() && i < lines.size(); ++i)
      out[names[i]] = lines[i];
    return out;
  }
  static std::string host_namespace(const std::string &name) {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/ns/" + name, ec).string();
  }
};

TEST_F(IsolationTest, ConfiguredNamespacesAreNew) {
  std::vector<std::string> names = {"pid", "net", "ipc", "uts", "mnt"};
  auto inside = container_namespaces(names);
  for (auto &n : names) {
    ASSERT_FALSE(inside[n].empty()) << n;
    EXPECT_NE(inside[n], host_namespace(n)) << "the container shares the host's " << n << " namespace";
  }
}

TEST_F(IsolationTest, UnconfiguredNamespacesAreShared) {
  std::vector<std::string> names = {"net", "ipc", "user", "cgroup"};
  auto inside = container_namespaces(names, [](json &c) {
    c["linux"]["namespaces"] = {{{"type", "pid"}}, {{"type", "uts"}}, {{"type", "mount"}}};
    // /dev/mqueue belongs to the ipc namespace: keep the host's instance out of the picture.
    auto &mounts = c["mounts"];
    for (auto it = mounts.begin(); it != mounts.end();)
      it =
          (*it)["destination"] == "/dev/mqueue" || (*it)["destination"] == "/sys" ? mounts.erase(it) : it + 1;
  });
  for (auto &n : names)
    EXPECT_EQ(inside[n], host_namespace(n)) << n;
}

TEST_F(IsolationTest, NetworkNamespaceHasOnlyLoopback) {
  auto r = run_container({"cat", "/proc/net/dev"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> ifaces;
  for (auto &line : split_lines(r.out)) {
    auto colon = line.find(':');
    if (colon != std::string::npos && !contains(line, "|"))
      ifaces.push_back(trim(line.substr(0, colon)));
  }
  EXPECT_EQ(ifaces, std::vector<std::string>{"lo"}) << r;
}

TEST_F(IsolationTest, PidNamespaceSeesOnlyItsOwnProcesses) {
  auto r = run_container({"sh", "-c", "cd /proc && for p in [0-9]*; do echo $p; done"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto pids = split_lines(r.out);
  EXPECT_LE(pids.size(), 3u) << r;
  EXPECT_NE(std::find(pids.begin(), pids.end(), "1"), pids.end()) << r;
}

TEST_F(IsolationTest, ProcIsTheContainersOwn) {
  // /proc must be a fresh proc mount for the new pid namespace, not the host's.
  auto r = run_container({"sh", "-c", "grep ' /proc ' /proc/self/mountinfo; readlink /proc/self"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r;
  EXPECT_TRUE(contains(lines[0], " - proc ")) << r;
  EXPECT_LE(std::stoi(lines[1]), 3) << "the container's /proc shows host pids: " << r;
}

TEST_F(IsolationTest, MountNamespaceHidesContainerMountsFromHost) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "mnt");
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(no_new_mounts()) << "container mounts are visible in the host's mount namespace";
  // And the container's own mount table has its /proc, /dev and /sys.
  std::string mi = read_file("/proc/" + std::to_string(pid) + "/mountinfo");
  for (const char *mp : {" /proc ", " /dev ", " /dev/pts ", " /dev/shm ", " /dev/mqueue ", " /sys "})
    EXPECT_TRUE(contains(mi, mp)) << "no" << mp << "mount in the container:\n" << mi;
}

} // namespace
