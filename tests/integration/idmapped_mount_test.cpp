// Idmapped bind mounts (runtime-spec 1.2: options "idmap"/"ridmap", mounts[].uidMappings and
// gidMappings): the source's files appear with shifted owners inside, writes land with the
// source's own ids, and what cannot be idmapped is a clear error that leaves nothing behind.
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"

namespace bh_test {
namespace {

constexpr int kHostId = 100000;
constexpr int kSize = 65536;

class IdmappedMountTest : public BulkheadTest {
protected:
  void SetUp() override {
    BulkheadTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    if (runtime_is_runc())
      GTEST_SKIP() << "Debian's runc 1.1 has no idmapped mounts";
    if (!kernel_has_user_namespaces())
      GTEST_SKIP() << "no user namespaces";
    // A source with a root-owned file and one of uid/gid 1000, as an image or a volume has them.
    source_ = make_temp_dir("idmap-source");
    ASSERT_TRUE(write_file(source_ + "/root-file", "r\n"));
    ASSERT_TRUE(write_file(source_ + "/user-file", "u\n"));
    ASSERT_EQ(::chown((source_ + "/user-file").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::chmod(source_.c_str(), 0777), 0);
  }

  static json bind(const std::string &source, std::vector<std::string> options) {
    return {{"destination", "/data"}, {"type", "bind"}, {"source", source}, {"options", options}};
  }
  static void add_userns(json &c) {
    c["linux"]["namespaces"].push_back({{"type", "user"}});
    json map = {{{"containerID", 0}, {"hostID", kHostId}, {"size", kSize}}};
    c["linux"]["uidMappings"] = map;
    c["linux"]["gidMappings"] = map;
  }
  static uid_t owner(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
  }

  std::string source_;
};

TEST_F(IdmappedMountTest, IdmapTakesTheContainersMappingSoRootsFilesAreRootsInside) {
  std::string bundle =
      make_bundle({"sh", "-c", "stat -c '%u %g' /data/root-file /data/user-file; echo w > /data/made-inside"},
                  [&](json &c) {
                    add_userns(c);
                    c["mounts"].push_back(bind(source_, {"rbind", "idmap"}));
                  });
  ASSERT_TRUE(run_command({"chown", "-R", "100000:100000", rootfs(bundle)}).ok());
  auto r = bh({"run", "--bundle", bundle, "idmap-userns"});
  ASSERT_EQ(r.exit_code, 0) << r;
  // Without the idmap both would be nobody (65534): host 0 and 1000 are outside 100000..165535.
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"0 0", "1000 1000"})) << r;
  EXPECT_EQ(owner(source_ + "/made-inside"), 0u) << "container root writes as the source's root";
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(IdmappedMountTest, MountMappingsShiftIdsWithoutAUserNamespace) {
  // Source 0 -> 2000 and 1000 -> 3000, in a container of host root.
  std::string bundle =
      make_bundle({"stat", "-c", "%u %g", "/data/root-file", "/data/user-file"}, [&](json &c) {
        json m = bind(source_, {"rbind", "ridmap"});
        m["uidMappings"] = {{{"containerID", 0}, {"hostID", 2000}, {"size", 1}},
                            {{"containerID", 1000}, {"hostID", 3000}, {"size", 1}}};
        m["gidMappings"] = m["uidMappings"];
        c["mounts"].push_back(m);
      });
  auto r = bh({"run", "--bundle", bundle, "idmap-explicit"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"2000 2000", "3000 3000"})) << r;
  EXPECT_EQ(owner(source_ + "/root-file"), 0u) << "the source itself is unchanged";
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(IdmappedMountTest, IdmapOfATmpfsIsRefusedAndLeavesNothing) {
  std::string bundle = make_bundle({"true"}, [](json &c) {
    c["mounts"].push_back(
        {{"destination", "/data"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"idmap"}}});
  });
  auto r = bh({"run", "--bundle", bundle, "idmap-tmpfs"});
  EXPECT_TRUE(failed_cleanly(r, "only bind mounts can be idmapped", "idmap-tmpfs"));
}

TEST_F(IdmappedMountTest, IdmapWithoutMappingsOrUserNamespaceIsRefusedAndLeavesNothing) {
  std::string bundle = make_bundle({"true"}, [&](json &c) {
    c["mounts"].push_back(bind(source_, {"bind", "idmap"}));
  });
  auto r = bh({"run", "--bundle", bundle, "idmap-nomap"});
  EXPECT_TRUE(failed_cleanly(r, "this container has none", "idmap-nomap"));
}

TEST_F(IdmappedMountTest, FeaturesSayIdmapIsSupported) {
  auto r = bh({"features"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(json::parse(r.out)["linux"]["mountExtensions"]["idmap"]["enabled"], true) << r.out;
}

} // namespace
} // namespace bh_test
