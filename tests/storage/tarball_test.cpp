// Tarball imports: every compression, contents, metadata, init detection.
#include <sys/stat.h>
#include <sys/xattr.h>

#include "helpers.hpp"

namespace bulkhead::storage::test {
namespace {

class TarballImport : public ::testing::TestWithParam<std::pair<Compression, const char *>> {};

TEST_P(TarballImport, ExtractsContentAndMetadata) {
  TempDir tmp;
  std::string tar = tmp / (std::string("rootfs") + GetParam().second);
  write_busybox_tar(tar, GetParam().first);
  TemplateStore store(tmp / "root");
  std::vector<Progress> seen;
  auto info = store.import("bb", tar, [&](const Progress &p) { seen.push_back(p); });
  ASSERT_TRUE(info) << info.error().text();

  std::string r = store.rootfs_path("bb");
  EXPECT_EQ(r, tmp / "root/templates/bb/rootfs");
  EXPECT_EQ(slurp(r + "/etc/hostname"), "tmpl\n");
  EXPECT_EQ(slurp(r + "/bin/busybox"), slurp("/bin/busybox"));
  struct stat st {
  }, st2{};
  ASSERT_EQ(::lstat((r + "/bin/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((r + "/home/user/notes").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtime, 1700000000);
  ASSERT_EQ(::lstat((r + "/home/user").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1600000000) << "directory times are set after their content";
  ASSERT_EQ(::lstat((r + "/etc/hostname").c_str(), &st), 0);
  ASSERT_EQ(::lstat((r + "/etc/hostname-link").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino) << "hard links stay hard links";
  char buf[64] = {};
  ASSERT_GT(::readlink((r + "/sbin/init").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "../bin/busybox");

  EXPECT_EQ(info->name, "bb");
  EXPECT_EQ(info->source, "tar:" + tar);
  EXPECT_EQ(info->init, "/sbin/init");
  EXPECT_TRUE(info->init_present);
  EXPECT_EQ(info->stop_signal, "SIGUSR2");
  EXPECT_GT(info->size_bytes, 1000000u); // busybox, counted once
  EXPECT_LT(info->size_bytes, 2 * slurp("/bin/busybox").size());
  EXPECT_EQ(info->files, 12u); // bin sbin etc home home/user + 7 non-directories
  EXPECT_GT(info->created_unix, 1700000000);

  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().stage, "extracting");
  EXPECT_GT(seen.front().total, 0u);
  EXPECT_EQ(seen.back().stage, "done");
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());

  auto again = store.get("bb");
  ASSERT_TRUE(again) << again.error().text();
  EXPECT_EQ(again->stop_signal, "SIGUSR2");
  EXPECT_EQ(again->files, info->files);
}

INSTANTIATE_TEST_SUITE_P(Compressions, TarballImport,
                         ::testing::Values(std::pair{Compression::None, ".tar"},
                                           std::pair{Compression::Gzip, ".tar.gz"},
                                           std::pair{Compression::Xz, ".tar.xz"},
                                           std::pair{Compression::Zstd, ".tar.zst"},
                                           std::pair{Compression::Bzip2, ".tar.bz2"}),
                         [](const auto &info) {
                           std::string s = info.param.second + 1;
                           for (auto &c : s)
                             if (c == '.')
                               c = '_';
                           return s;
                         });

TEST(TarballImportTool, GnuTarOutputWithTgzName) {
  // A tarball made by GNU tar (not by our builder), named .tgz.
  TempDir tmp;
  make_busybox_rootfs(tmp / "src");
  ASSERT_EQ(sh("tar -C '" + (tmp / "src") + "' -czf '" + (tmp / "rootfs.tgz") + "' ."), 0);
  TemplateStore store(tmp / "root");
  auto info = store.import("gnu", tmp / "rootfs.tgz", nullptr);
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_EQ(info->stop_signal, "SIGUSR2");
  EXPECT_EQ(slurp(store.rootfs_path("gnu") + "/etc/inittab"), slurp(tmp / "src/etc/inittab"));
  struct stat st {};
  ASSERT_EQ(::lstat((store.rootfs_path("gnu") + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST(TarballImportTool, XattrsAllowedOnesKept) {
  TempDir tmp;
  {
    TarBuilder t(tmp / "x.tar");
    t.xattr(
        "ping", "security.capability",
        std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20));
    t.xattr("other", "trusted.overlay.opaque", "y");
    t.xattr("user", "user.note", "hi");
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("x", tmp / "x.tar", nullptr);
  ASSERT_TRUE(info) << info.error().text();
  std::string r = store.rootfs_path("x");
  char v[64];
  EXPECT_EQ(::getxattr((r + "/user").c_str(), "user.note", v, sizeof v), 2);
  EXPECT_EQ(::getxattr((r + "/ping").c_str(), "security.capability", v, sizeof v), 20);
  EXPECT_LT(::getxattr((r + "/other").c_str(), "trusted.overlay.opaque", v, sizeof v), 0)
      << "trusted.overlay.* in a lowerdir would steer overlayfs: dropped";
}

TEST(TarballImportTool, CorruptTarballFailsAndLeavesNothing) {
  TempDir tmp;
  write_busybox_tar(tmp / "ok.tar.gz", Compression::Gzip);
  std::string data = slurp(tmp / "ok.tar.gz");
  spit(tmp / "bad.tar.gz", data.substr(0, data.size() / 2));
  TemplateStore store(tmp / "root");
  auto info = store.import("bad", tmp / "bad.tar.gz", nullptr);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().text().find("bad.tar.gz"), std::string::npos) << info.error().text();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  EXPECT_FALSE(exists(tmp / "root/templates/bad"));
}

} // namespace
} // namespace bulkhead::storage::test
