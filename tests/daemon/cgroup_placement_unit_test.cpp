// bulkheadd's choice of cgroup driver and parent (daemon/cgroup_placement.hpp). The systemd side
// against a real systemd runs in tests/systemd/vm-daemon-systemd.sh.
#include "daemon/cgroup_placement.hpp"

#include <gtest/gtest.h>

namespace bulkhead::daemon {
namespace {

TEST(CgroupPlacement, AutoIsCgroupfsWithoutSystemd) {
  auto p = resolve_cgroup_placement("auto", "", false);
  ASSERT_TRUE(p) << p.error().text();
  EXPECT_FALSE(p->systemd);
  EXPECT_EQ(p->driver(), "cgroupfs");
  EXPECT_EQ(p->cgroups_path("web1"), "/bulkhead/web1");
}

TEST(CgroupPlacement, AutoIsSystemdWhenBootedWithSystemd) {
  auto p = resolve_cgroup_placement("auto", "", true);
  ASSERT_TRUE(p) << p.error().text();
  EXPECT_TRUE(p->systemd);
  EXPECT_EQ(p->cgroups_path("web1"), "machine.slice:bulkhead:web1");
  auto q = resolve_cgroup_placement("auto", "hosting.slice:tenant", true);
  ASSERT_TRUE(q) << q.error().text();
  EXPECT_EQ(q->cgroups_path("web1"), "hosting.slice:tenant:web1");
}

TEST(CgroupPlacement, AutoKeepsAnExplicitCgroupPathOnCgroupfs) {
  // Several daemons on one machine (the multi-host test bed) each name their own cgroup path.
  auto p = resolve_cgroup_placement("auto", "/host1", true);
  ASSERT_TRUE(p) << p.error().text();
  EXPECT_FALSE(p->systemd);
  EXPECT_EQ(p->cgroups_path("c1"), "/host1/c1");
}

TEST(CgroupPlacement, MismatchedParentsAreRefusedByName) {
  auto a = resolve_cgroup_placement("systemd", "/bulkhead", true);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().text().find("\"/bulkhead\""), std::string::npos) << a.error().text();
  auto b = resolve_cgroup_placement("cgroupfs", "machine.slice", true);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().text().find("\"machine.slice\""), std::string::npos) << b.error().text();
  for (const char *bad : {"a/b.slice", "machine", "machine.slice:", "a.slice:b:c"}) {
    auto r = resolve_cgroup_placement("systemd", bad, true);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().text().find(bad), std::string::npos) << r.error().text();
  }
  auto c = resolve_cgroup_placement("cgroupfs", "/a/../b", false);
  EXPECT_FALSE(c);
  auto d = resolve_cgroup_placement("systemd", "", false);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().text().find("not PID 1"), std::string::npos) << d.error().text();
  EXPECT_FALSE(resolve_cgroup_placement("cgroupv3", "", false));
}

} // namespace
} // namespace bulkhead::daemon
