// Overlay mounts of a template: writes land in the container's upper, the template stays as is.
#include "helpers.hpp"
#include "storage/overlay.hpp"

namespace bulkhead::storage::test {
namespace {

TEST(Overlay, WritesGoToUpperTemplateUntouched) {
  TempDir tmp;
  write_busybox_tar(tmp / "r.tar", Compression::None);
  TemplateStore store(tmp / "root");
  ASSERT_TRUE(store.import("bb", tmp / "r.tar", nullptr));
  std::string lower = store.rootfs_path("bb");
  OverlayPaths p{lower, tmp / "root/containers/c1/upper", tmp / "root/containers/c1/work",
                 tmp / "root/containers/c1/bundle/rootfs"};
  auto m = mount_overlay(p);
  if (!m && m.error().code == EPERM)
    GTEST_SKIP() << "cannot mount overlayfs here: " << m.error().text();
  ASSERT_TRUE(m) << m.error().text();
  OverlayMount guard(p.target);
  EXPECT_TRUE(overlay_mounted(p.target));
  EXPECT_TRUE(overlay_mounted(p.target + "/")) << "trailing slash";
  EXPECT_FALSE(overlay_mounted(tmp.path()));

  EXPECT_EQ(slurp(p.target + "/etc/hostname"), "tmpl\n");
  spit(p.target + "/etc/hostname", "c1\n");
  spit(p.target + "/new-file", "new");
  ASSERT_EQ(::unlink((p.target + "/bin/sh").c_str()), 0);

  EXPECT_EQ(slurp(lower + "/etc/hostname"), "tmpl\n");
  EXPECT_FALSE(exists(lower + "/new-file"));
  EXPECT_TRUE(exists(lower + "/bin/sh"));
  EXPECT_EQ(slurp(p.upper + "/etc/hostname"), "c1\n");
  EXPECT_EQ(slurp(p.upper + "/new-file"), "new");

  // A second container of the same template sees the template, not c1's changes.
  OverlayPaths p2{lower, tmp / "root/containers/c2/upper", tmp / "root/containers/c2/work",
                  tmp / "root/containers/c2/bundle/rootfs"};
  ASSERT_TRUE(mount_overlay(p2));
  OverlayMount guard2(p2.target);
  EXPECT_EQ(slurp(p2.target + "/etc/hostname"), "tmpl\n");

  ASSERT_TRUE(unmount_overlay(p.target));
  guard.release();
  EXPECT_FALSE(overlay_mounted(p.target));
  EXPECT_FALSE(exists(p.target + "/new-file"));
  EXPECT_TRUE(unmount_overlay(p.target)) << "unmounting twice is fine";
  EXPECT_TRUE(unmount_overlay(tmp / "no/such/dir"));
}

TEST(Overlay, RefusesPathsTheOptionsCannotCarry) {
  OverlayPaths p{"/tmp/a,b", "/tmp/u", "/tmp/w", "/tmp/t"};
  auto r = mount_overlay(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("/tmp/a,b"), std::string::npos) << r.error().message;
  p = {"/tmp/l", "/tmp/u:x", "/tmp/w", "/tmp/t"};
  EXPECT_FALSE(mount_overlay(p));
}

TEST(Overlay, MissingLowerNamed) {
  TempDir tmp;
  OverlayPaths p{tmp / "nope", tmp / "u", tmp / "w", tmp / "t"};
  auto r = mount_overlay(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().text().find(tmp / "nope"), std::string::npos);
}

} // namespace
} // namespace bulkhead::storage::test
