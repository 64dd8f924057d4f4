#include <gtest/gtest.h>
#include <linux/mount.h>
#include <sys/mount.h>

#include "rootfs/mount_options.hpp"

using namespace bulkhead::rootfs;

TEST(MountOptions, FlagsAndData) {
  auto o = parse_mount_options({"nosuid", "strictatime", "mode=755", "size=65536k"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(o.data, "mode=755,size=65536k");
  EXPECT_FALSE(o.bind);
}

TEST(MountOptions, ClearingOptionsWin) {
  auto o = parse_mount_options({"ro", "rw", "nodev", "dev", "noexec"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOEXEC));
  EXPECT_EQ(o.cleared, static_cast<unsigned long>(MS_RDONLY | MS_NODEV));
}

TEST(MountOptions, BindKinds) {
  EXPECT_TRUE(parse_mount_options({"bind"}).bind);
  EXPECT_FALSE(parse_mount_options({"bind"}).recursive_bind);
  auto r = parse_mount_options({"rbind", "ro"});
  EXPECT_TRUE(r.bind && r.recursive_bind);
  EXPECT_EQ(r.flags, static_cast<unsigned long>(MS_RDONLY));
}

TEST(MountOptions, Propagation) {
  auto o = parse_mount_options({"rprivate", "shared"});
  ASSERT_EQ(o.propagation.size(), 2u);
  EXPECT_EQ(o.propagation[0], static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(o.propagation[1], static_cast<unsigned long>(MS_SHARED));
  EXPECT_TRUE(o.data.empty());
}

TEST(MountOptions, RecursiveAttributes) {
  auto o = parse_mount_options({"rro", "rnosuid", "rexec"});
  EXPECT_EQ(o.rec_attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
  EXPECT_EQ(o.rec_attr_clr, static_cast<uint64_t>(MOUNT_ATTR_NOEXEC));
}

TEST(MountOptions, Extensions) {
  EXPECT_TRUE(parse_mount_options({"tmpcopyup"}).tmpcopyup);
  EXPECT_TRUE(parse_mount_options({"idmap"}).idmap);
}

TEST(MountOptions, AttrsFromFlags) {
  uint64_t clr = 0;
  uint64_t set = mount_attrs_from_flags(MS_RDONLY | MS_NOSUID | MS_NOATIME, &clr);
  EXPECT_EQ(set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME));
  EXPECT_TRUE(clr & MOUNT_ATTR_NODEV);
  EXPECT_TRUE(clr & MOUNT_ATTR__ATIME);
}

TEST(RootfsPropagation, Values) {
  EXPECT_EQ(*propagation_flags(""), 0ul);
  EXPECT_EQ(*propagation_flags("rslave"), static_cast<unsigned long>(MS_SLAVE | MS_REC));
  auto bad = propagation_flags("sideways");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "linux.rootfsPropagation: unknown value \"sideways\"");
}
