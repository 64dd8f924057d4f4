// Hostile archives: each must fail naming the entry, leave no staging directory and write nothing
// outside the template.
#include <functional>

#include "helpers.hpp"

namespace bulkhead::storage::test {
namespace {

struct Hostile {
  const char *name;
  std::function<void(TarBuilder &, const std::string &outside)> build;
  const char *expect; // in the error text
};

class HostileTar : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileTar, RefusedAndNothingLeft) {
  TempDir tmp;
  // "outside": a path out of the template that the archive tries to reach.
  std::string outside = tmp / "outside";
  {
    TarBuilder t(tmp / "evil.tar");
    t.dir("etc").file("etc/ok", "fine\n");
    GetParam().build(t, outside);
    t.file("etc/after", "never\n");
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("evil", tmp / "evil.tar", nullptr);
  ASSERT_FALSE(info) << "imported a hostile archive";
  std::string text = info.error().text();
  std::printf("refused as expected: %s\n", text.c_str());
  EXPECT_NE(text.find(GetParam().expect), std::string::npos) << text;
  EXPECT_EQ(info.error().code, EINVAL) << text;
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  EXPECT_FALSE(exists(tmp / "root/templates/evil"));
  EXPECT_FALSE(exists(outside)) << "wrote outside the template";
  EXPECT_FALSE(exists(outside + "/evil"));
  EXPECT_FALSE(exists(tmp / "evil-file"));
}

INSTANTIATE_TEST_SUITE_P(
    Entries, HostileTar,
    ::testing::Values(
        Hostile{"DotDot", [](TarBuilder &t, const std::string &) { t.file("../evil-file", "x"); },
                "../evil-file"},
        Hostile{"DotDotInside",
                [](TarBuilder &t, const std::string &) { t.file("etc/../../evil-file", "x"); }, "'..'"},
        Hostile{"Absolute", [](TarBuilder &t, const std::string &outside) { t.file(outside, "x"); },
                "absolute"},
        Hostile{"CharDevice", [](TarBuilder &t, const std::string &) { t.chardev("dev/sda", 8, 0); },
                "dev/sda: device nodes are refused"},
        Hostile{"HardlinkOut",
                [](TarBuilder &t, const std::string &) { t.hardlink("etc/passwd", "../../etc/passwd"); },
                "etc/passwd: hardlink target ../../etc/passwd refused"},
        Hostile{"HardlinkAbsolute",
                [](TarBuilder &t, const std::string &) { t.hardlink("etc/shadow", "/etc/shadow"); },
                "etc/shadow: hardlink target /etc/shadow refused"},
        Hostile{"SymlinkThenWriteThrough",
                [](TarBuilder &t, const std::string &outside) {
                  t.symlink("a", outside);
                  t.file("a/evil", "x");
                },
                "a/evil: its parent directory a goes through a symlink"},
        Hostile{"RelativeSymlinkThenWriteThrough",
                [](TarBuilder &t, const std::string &) {
                  t.symlink("up", "../..");
                  t.file("up/evil-file", "x");
                },
                "up/evil-file: its parent directory up goes through a symlink"},
        Hostile{"SymlinkThenHardlinkThrough",
                [](TarBuilder &t, const std::string &) {
                  t.symlink("hostetc", "/etc");
                  t.hardlink("etc/stolen", "hostetc/passwd");
                },
                "etc/stolen: hardlink target hostetc/passwd cannot be resolved"},
        Hostile{"DirReplacedBySymlinkThenWrite",
                [](TarBuilder &t, const std::string &outside) {
                  t.dir("d").file("d/x", "1");
                  t.symlink("d", outside); // replaces the directory
                  t.dir("d/sub");
                },
                "d/sub: its parent directory d goes through a symlink"}),
    [](const auto &info) { return std::string(info.param.name); });

TEST(HostileTar, SymlinkToOutsideIsKeptVerbatimButNeverFollowed) {
  // A symlink pointing anywhere is legitimate content (it resolves inside the container); only
  // writing through it is refused.
  TempDir tmp;
  {
    TarBuilder t(tmp / "ok.tar");
    t.symlink("etc/mtab", "/proc/self/mounts").symlink("escape", "../../../../tmp");
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("links", tmp / "ok.tar", nullptr);
  ASSERT_TRUE(info) << info.error().text();
  char buf[64] = {};
  ASSERT_GT(::readlink((store.rootfs_path("links") + "/etc/mtab").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "/proc/self/mounts");
  EXPECT_EQ(info->init_present, false);
  EXPECT_EQ(info->stop_signal, "SIGPWR");
}

TEST(HostileTar, InitSymlinkEscapingResolvesInsideTheRootfs) {
  // /sbin/init -> ../../../../bin/busybox must be resolved with the rootfs as "/" (the host's
  // /bin/busybox must not count).
  TempDir tmp;
  {
    TarBuilder t(tmp / "i.tar");
    t.symlink("sbin/init", "../../../../../lib/systemd/systemd");
    t.file("lib/systemd/systemd", "#!/bin/false\n", 0755);
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("sd", tmp / "i.tar", nullptr);
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_TRUE(info->init_present);
  EXPECT_EQ(info->stop_signal, "SIGRTMIN+3");
}

} // namespace
} // namespace bulkhead::storage::test
