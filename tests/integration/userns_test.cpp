// User namespace with uid/gid mappings: container root is host uid 100000.
#include "harness.hpp"

#include <sys/stat.h>

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

} // namespace
