// linux.cgroupsPath -> the container's cgroup below the cgroup2 mount.
#include <gtest/gtest.h>

#include "cgroups/cgroup.hpp"

namespace bulkhead::cgroups {
namespace {

std::string resolve(const std::string &path, const std::string &self = "0::/user.slice/session-1.scope\n") {
  auto r = resolve_path(path, "c1", self);
  return r ? *r : "error: " + r.error().message;
}

TEST(CgroupsPath, DefaultIsBulkheadSlashId) { EXPECT_EQ(resolve(""), "/bulkhead/c1"); }

TEST(CgroupsPath, AbsoluteIsCleaned) {
  EXPECT_EQ(resolve("/machine/c1"), "/machine/c1");
  EXPECT_EQ(resolve("//machine/./c1/"), "/machine/c1");
  EXPECT_EQ(resolve("/"), "error: linux.cgroupsPath \"/\": names the root cgroup");
  EXPECT_EQ(resolve("/a/../../etc"), "error: linux.cgroupsPath \"/a/../../etc\": may not contain \"..\"");
}

TEST(CgroupsPath, RelativeGoesBelowTheParentOfOurOwnCgroup) {
  EXPECT_EQ(resolve("ctr/c1"), "/user.slice/ctr/c1");
  EXPECT_EQ(resolve("c1", "12:memory:/x\n0::/\n"), "/c1");
  EXPECT_EQ(resolve("c1", "0::/a\n"), "/c1");
  EXPECT_EQ(resolve("c1", "1:name=systemd:/\n0::/a/b/c\n"), "/a/b/c1");
}

TEST(CgroupsPath, SystemdSyntaxNeedsTheSystemdDriver) {
  EXPECT_EQ(resolve("system.slice:bulkhead:c1"),
            "error: linux.cgroupsPath \"system.slice:bulkhead:c1\": a systemd \"slice:prefix:name\" path "
            "needs the systemd cgroup driver (bulkhead --systemd-cgroup)");
}

} // namespace
} // namespace bulkhead::cgroups
