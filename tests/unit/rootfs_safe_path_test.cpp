// Path resolution inside a rootfs, on real directories and symlinks in a temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "rootfs/safe_path.hpp"

namespace fs = std::filesystem;
using namespace bulkhead;
using namespace bulkhead::rootfs;

namespace {

class SafePath : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bulkhead-safepath-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    root_ = base_ / "rootfs";
    host_ = base_ / "host";
    fs::create_directories(root_ / "etc");
    fs::create_directories(host_);
    root_fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }
  void TearDown() override { fs::remove_all(base_); }

  // The inode the kernel resolved, to compare with where we expect it to be.
  static ino_t inode_of(int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    return st.st_ino;
  }
  static ino_t inode_of(const fs::path &p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_ino;
  }

  fs::path base_, root_, host_;
  UniqueFd root_fd_;
};

TEST_F(SafePath, AbsoluteSymlinkStaysInsideRoot) {
  fs::create_directories(root_ / host_.relative_path());
  fs::create_symlink(host_, root_ / "evil");
  auto fd = open_in_root(root_fd_.get(), "/evil", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(fd) << fd.error().text();
  EXPECT_EQ(inode_of(fd->get()), inode_of(root_ / host_.relative_path()));
  EXPECT_NE(inode_of(fd->get()), inode_of(host_));
}

TEST_F(SafePath, DotDotSymlinkIsClampedAtRoot) {
  fs::create_symlink("../../../../../../..", root_ / "up");
  auto fd = open_in_root(root_fd_.get(), "/up/etc", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(fd) << fd.error().text();
  EXPECT_EQ(inode_of(fd->get()), inode_of(root_ / "etc"));
}

TEST_F(SafePath, MagicLinksAreRefused) {
  fs::create_symlink("/proc/self/root", root_ / "magic");
  // Inside the root /proc/self/root does not exist, so resolution fails instead of escaping.
  auto fd = open_in_root(root_fd_.get(), "/magic/etc", O_PATH);
  EXPECT_FALSE(fd);
}

TEST_F(SafePath, MkdirAllThroughSymlinkCreatesInsideRoot) {
  fs::create_symlink(host_, root_ / "evil");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/evil/a/b");
  ASSERT_TRUE(fd) << fd.error().text();
  EXPECT_TRUE(fs::is_directory(root_ / host_.relative_path() / "a" / "b"));
  EXPECT_FALSE(fs::exists(host_ / "a"));
}

TEST_F(SafePath, EnsureFileTargetCreatesEmptyFile) {
  auto fd = ensure_mount_target(root_fd_.get(), "/etc/resolv.conf", TargetKind::File);
  ASSERT_TRUE(fd) << fd.error().text();
  EXPECT_TRUE(fs::is_regular_file(root_ / "etc/resolv.conf"));
  EXPECT_EQ(fs::file_size(root_ / "etc/resolv.conf"), 0u);
}

TEST_F(SafePath, EnsureFileTargetNeverCreatesThroughDanglingSymlink) {
  fs::create_symlink(host_ / "planted", root_ / "etc" / "hosts");
  auto fd = ensure_mount_target(root_fd_.get(), "/etc/hosts", TargetKind::File);
  EXPECT_FALSE(fs::exists(host_ / "planted"));
  if (fd) {
    struct stat st {};
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    EXPECT_NE(st.st_ino, inode_of(host_));
  }
}

TEST_F(SafePath, MissingPathReportsEnoentWithPath) {
  auto fd = open_in_root(root_fd_.get(), "/no/such", O_PATH);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code, ENOENT);
  EXPECT_NE(fd.error().text().find("/no/such"), std::string::npos);
}

TEST(SplitParent, Cases) {
  EXPECT_EQ(split_parent("/a/b/c"), (std::pair<std::string, std::string>{"/a/b", "c"}));
  EXPECT_EQ(split_parent("/a"), (std::pair<std::string, std::string>{"/", "a"}));
  EXPECT_EQ(split_parent("/a/b/"), (std::pair<std::string, std::string>{"/a", "b"}));
}

} // namespace
