// Directory sources: copied without following symlinks, hard links kept, device nodes skipped.
#include <sys/sysmacros.h>

#include "helpers.hpp"

namespace bulkhead::storage::test {
namespace {

TEST(DirImport, CopiesBusyboxRootfs) {
  TempDir tmp;
  std::string src = make_busybox_rootfs(tmp / "src");
  ASSERT_EQ(::mknod((src + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mkfifo((src + "/run/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::link((src + "/etc/passwd").c_str(), (src + "/etc/passwd-").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (src + "/hostetc").c_str()), 0);
  ASSERT_EQ(::chown((src + "/etc/group").c_str(), 123, 456), 0);

  TemplateStore store(tmp / "root");
  std::vector<std::string> stages;
  auto info = store.import("bbdir", src, [&](const Progress &p) { stages.push_back(p.stage); });
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_EQ(info->source, "dir:" + src);
  EXPECT_EQ(info->stop_signal, "SIGUSR2");
  EXPECT_TRUE(info->init_present);
  EXPECT_EQ(stages.front(), "copying");

  std::string r = store.rootfs_path("bbdir");
  EXPECT_EQ(slurp(r + "/bin/busybox"), slurp("/bin/busybox"));
  EXPECT_FALSE(exists(r + "/dev/null")) << "device nodes are not copied";
  EXPECT_TRUE(exists(r + "/dev"));
  struct stat st {
  }, st2{};
  ASSERT_EQ(::lstat((r + "/run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat((r + "/hostetc").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "symlinks are copied, not followed";
  ASSERT_EQ(::lstat((r + "/etc/passwd").c_str(), &st), 0);
  ASSERT_EQ(::lstat((r + "/etc/passwd-").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  ASSERT_EQ(::lstat((r + "/etc/group").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 123u);
  EXPECT_EQ(st.st_gid, 456u);
  ASSERT_EQ(::lstat((r + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  ASSERT_EQ(::lstat((r + "/sbin/init").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(DirImport, MissingSourceFails) {
  TempDir tmp;
  TemplateStore store(tmp / "root");
  auto info = store.import("nope", tmp / "does-not-exist", nullptr);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ENOENT);
  EXPECT_NE(info.error().text().find("does-not-exist"), std::string::npos) << info.error().text();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

} // namespace
} // namespace bulkhead::storage::test
