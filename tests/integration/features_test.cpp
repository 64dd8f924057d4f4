// `features`: the runtime-spec features document reflects what this build does.
#include "harness.hpp"

using namespace bh_test;

namespace {

bool has(const json &array, const std::string &value) {
  for (const auto &v : array)
    if (v == value)
      return true;
  return false;
}

TEST(FeaturesTest, DocumentMatchesTheImplementation) {
  if (runtime_is_runc())
    GTEST_SKIP() << "bulkhead-specific";
  auto r = run_command({runtime_path(), "features"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json f = json::parse(r.out);
  EXPECT_EQ(f["ociVersionMax"], "1.2.0");
  EXPECT_EQ(f["hooks"].size(), 6u);
  for (const char *o : {"rbind", "rro", "tmpcopyup", "rslave", "nosymfollow"})
    EXPECT_TRUE(has(f["mountOptions"], o)) << o;
  EXPECT_FALSE(has(f["mountOptions"], "idmap")) << "idmapped mounts are not implemented";
  EXPECT_TRUE(has(f["linux"]["namespaces"], "time"));
  EXPECT_TRUE(has(f["linux"]["capabilities"], "CAP_SYS_ADMIN"));
  EXPECT_TRUE(has(f["linux"]["seccomp"]["actions"], "SCMP_ACT_NOTIFY"));
  EXPECT_TRUE(has(f["linux"]["seccomp"]["archs"], "SCMP_ARCH_X86_64"));
  EXPECT_EQ(f["linux"]["cgroup"]["v2"], true);
  EXPECT_EQ(f["linux"]["cgroup"]["systemd"], true) << "--systemd-cgroup (tests/systemd)";
}

} // namespace
