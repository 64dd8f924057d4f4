// User namespace with uid/gid mappings: container root is host uid 100000.
#include "harness.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

using namespace bh_test;

namespace {

constexpr int kHostId = 100000;
constexpr int kSize = 65536;

class UserNamespaceTest : public BulkheadTest {
protected:
  void SetUp() override {
    BulkheadTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    if (!kernel_has_user_namespaces())
      GTEST_SKIP() << "the kernel does not support user namespaces";
  }

  // A bundle whose rootfs the mapped root (host 100000) owns.
  std::string userns_bundle(const std::vector<std::string> &args) {
    std::string bundle = make_bundle(args, [](json &c) {
      c["linux"]["namespaces"].push_back({{"type", "user"}});
      json map = {{{"containerID", 0}, {"hostID", kHostId}, {"size", kSize}}};
      c["linux"]["uidMappings"] = map;
      c["linux"]["gidMappings"] = map;
    });
    auto r = run_command({"chown", "-R", "100000:100000", rootfs(bundle)});
    EXPECT_TRUE(r.ok()) << r;
    return bundle;
  }
};

TEST_F(UserNamespaceTest, MappingIsVisibleInside) {
  std::string bundle = userns_bundle({"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g"});
  auto r = bh({"run", "--bundle", bundle, "userns-run"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r;
  std::vector<std::string> mapping = {"0", "100000", "65536"};
  EXPECT_EQ(split_words(lines[0]), mapping) << r;
  EXPECT_EQ(split_words(lines[1]), mapping) << r;
  EXPECT_EQ(lines[2], "0") << r;
  EXPECT_EQ(lines[3], "0") << r;
}

TEST_F(UserNamespaceTest, InitRunsAsMappedHostUid) {
  std::string bundle = userns_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "userns");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("userns", "running"), "running");
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  std::string uid, gid;
  for (auto &line : split_lines(status)) {
    if (line.rfind("Uid:", 0) == 0)
      uid = line.substr(4);
    if (line.rfind("Gid:", 0) == 0)
      gid = line.substr(4);
  }
  std::vector<std::string> mapped(4, std::to_string(kHostId));
  EXPECT_EQ(split_words(uid), mapped) << status;
  EXPECT_EQ(split_words(gid), mapped) << status;
  std::error_code ec;
  auto ns = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/user", ec).string();
  EXPECT_NE(ns, std::filesystem::read_symlink("/proc/self/ns/user", ec).string());
  EXPECT_EQ(split_words(read_file("/proc/" + std::to_string(pid) + "/uid_map")),
            (std::vector<std::string>{"0", "100000", "65536"}));
  auto d = bh({"delete", "--force", "userns"});
  EXPECT_TRUE(d.ok()) << d;
  EXPECT_TRUE(wait_gone({pid}, 5s).empty());
  EXPECT_FALSE(state_dir_exists("userns"));
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(UserNamespaceTest, FilesCreatedInsideAreOwnedByMappedIds) {
  std::string bundle = userns_bundle({"touch", "/tmp/owned"});
  auto r = bh({"run", "--bundle", bundle, "userns-files"});
  ASSERT_EQ(r.exit_code, 0) << r;
  struct stat st {};
  ASSERT_EQ(::stat((rootfs(bundle) + "/tmp/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kHostId));
  EXPECT_EQ(st.st_gid, static_cast<gid_t>(kHostId));
}

// A host directory only host root may enter (0700 root:root), with a world-readable directory
// below it: the mapped root (host uid 100000) can reach neither by path.
std::string make_private_host_dir(const std::string &dir) {
  EXPECT_EQ(::mkdir(dir.c_str(), 0700), 0) << dir;
  EXPECT_EQ(::mkdir((dir + "/data").c_str(), 0755), 0) << dir;
  EXPECT_TRUE(write_file(dir + "/data/f", "readable\n"));
  EXPECT_TRUE(write_file(dir + "/secret", "root only\n", 0600));
  return dir;
}

TEST_F(UserNamespaceTest, BindSourcesTheMappedRootCannotReachAreMounted) {
  // As runc, which binds before dropping to the mapped ids: the runtime opens each source with
  // the host's credentials. Permissions inside stay the host's: the 0700 directory mounted
  // itself is there but closed to the mapped root, the readable one below it can be read.
  std::string priv = make_private_host_dir(tmp() + "/private");
  std::string bundle = userns_bundle({"sh", "-c",
                                      "cat /data/f; ls /private >/tmp/out 2>&1; echo ls=$?; "
                                      "stat -c %a /private; cat /file-bind >/tmp/out 2>&1; echo cat=$?"});
  json config = json::parse(read_file(bundle + "/config.json"));
  config["mounts"].push_back(
      {{"destination", "/data"}, {"type", "bind"}, {"source", priv + "/data"}, {"options", {"rbind", "ro"}}});
  config["mounts"].push_back(
      {{"destination", "/private"}, {"type", "bind"}, {"source", priv}, {"options", {"bind"}}});
  config["mounts"].push_back(
      {{"destination", "/file-bind"}, {"type", "bind"}, {"source", priv + "/secret"}, {"options", {"bind"}}});
  write_config(bundle, config);
  auto r = bh({"run", "--bundle", bundle, "userns-private-bind"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r;
  EXPECT_EQ(lines[0], "readable") << r;
  EXPECT_EQ(lines[1], "ls=1") << r;
  EXPECT_EQ(lines[2], "700") << r;
  EXPECT_EQ(lines[3], "cat=1") << r;
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(UserNamespaceTest, CgroupMountAfterABindMountShowsTheCgroupFiles) {
  // A cgroup mount after a bind whose source the runtime opened for the container (the mount
  // entries and the opened sources must stay paired), with a cgroup namespace as `runc spec`
  // writes it.
  std::string priv = make_private_host_dir(tmp() + "/private");
  std::string bundle = userns_bundle({"sh", "-c", "cat /data/f; ls /sys/fs/cgroup"});
  json config = json::parse(read_file(bundle + "/config.json"));
  config["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  config["mounts"].push_back(
      {{"destination", "/data"}, {"type", "bind"}, {"source", priv + "/data"}, {"options", {"rbind"}}});
  config["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                              {"type", "cgroup"},
                              {"source", "cgroup"},
                              {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});
  write_config(bundle, config);
  auto r = bh({"run", "--bundle", bundle, "userns-cgroup-after-bind"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << r;
  EXPECT_EQ(lines[0], "readable") << r;
  EXPECT_TRUE(std::find(lines.begin(), lines.end(), "cgroup.procs") != lines.end()) << r;
  EXPECT_TRUE(std::find(lines.begin(), lines.end(), "cgroup.controllers") != lines.end()) << r;
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(UserNamespaceTest, MissingBindSourceInAUserNamespaceFailsCleanly) {
  std::string bundle = userns_bundle({"true"});
  json config = json::parse(read_file(bundle + "/config.json"));
  config["mounts"].push_back({{"destination", "/data"},
                              {"type", "bind"},
                              {"source", tmp() + "/no-such-dir"},
                              {"options", {"rbind"}}});
  write_config(bundle, config);
  auto r = bh({"create", "--bundle", bundle, "userns-missing"});
  EXPECT_TRUE(failed_cleanly(
      r, "mount /data: bind source " + tmp() + "/no-such-dir: No such file or directory", "userns-missing"));
}

} // namespace
