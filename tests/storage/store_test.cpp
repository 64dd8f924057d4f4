// The store: names, EEXIST, list/get/remove, cancel, staging sweep.
#include <atomic>

#include "helpers.hpp"
#include "storage/init_detect.hpp"

namespace bulkhead::storage::test {
namespace {

TEST(Names, Validation) {
  for (const std::string &ok : std::vector<std::string>{"a", "0", "web-1", "a-b-c", std::string(63, 'x')})
    EXPECT_TRUE(validate_name("template", ok)) << ok;
  for (const std::string &bad : std::vector<std::string>{"", "-a", "A", "a_b", "a.b", "a/b", "..", "a b", "ü",
                                                         std::string(64, 'x'), ".staging-x"}) {
    auto r = validate_name("template", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find("invalid template name \"" + bad + "\""), std::string::npos)
        << r.error().message;
  }
}

TEST(Store, ImportRefusesBadNameAndExisting) {
  TempDir tmp;
  write_busybox_tar(tmp / "r.tar", Compression::None);
  TemplateStore store(tmp / "root");
  auto bad = store.import("../x", tmp / "r.tar", nullptr);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
  ASSERT_TRUE(store.import("one", tmp / "r.tar", nullptr));
  auto again = store.import("one", tmp / "r.tar", nullptr);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EEXIST);
  EXPECT_EQ(again.error().message, "template one already exists");
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(Store, ListGetRemove) {
  TempDir tmp;
  write_busybox_tar(tmp / "r.tar", Compression::None);
  TemplateStore store(tmp / "root");
  auto empty = store.list();
  ASSERT_TRUE(empty) << empty.error().text();
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(store.import("zeta", tmp / "r.tar", nullptr));
  ASSERT_TRUE(store.import("alpha", tmp / "r.tar", nullptr));
  auto l = store.list();
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].name, "alpha");
  EXPECT_EQ((*l)[1].name, "zeta");

  auto missing = store.get("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().message, "template nope does not exist");

  // A symlink inside the template pointing at a host directory: remove must not follow it.
  TempDir victim;
  spit(victim / "keep", "precious");
  ASSERT_EQ(::symlink(victim.path().c_str(), (store.rootfs_path("zeta") + "/victim").c_str()), 0);
  auto rm = store.remove("zeta");
  ASSERT_TRUE(rm) << rm.error().text();
  EXPECT_EQ(slurp(victim / "keep"), "precious");
  EXPECT_FALSE(exists(tmp / "root/templates/zeta"));
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  auto again = store.remove("zeta");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ENOENT);
  l = store.list();
  ASSERT_EQ(l->size(), 1u);
}

TEST(Store, CancelMidImportLeavesNothing) {
  TempDir tmp;
  {
    TarBuilder t(tmp / "big.tar.gz", Compression::Gzip);
    std::string blob(256 * 1024, 'z');
    for (int i = 0; i < 400; ++i)
      t.file("f" + std::to_string(i), blob);
  }
  TemplateStore store(tmp / "root");
  std::atomic<bool> cancel{false};
  int calls = 0;
  auto info = store.import(
      "c", tmp / "big.tar.gz",
      [&](const Progress &p) {
        ++calls;
        if (p.done > 0) // some entries are written: cancel in the middle
          cancel = true;
      },
      &cancel);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ECANCELED) << info.error().text();
  EXPECT_GT(calls, 1);
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  EXPECT_FALSE(exists(tmp / "root/templates/c"));

  // Cancelled before it starts, from a directory source.
  make_busybox_rootfs(tmp / "src");
  cancel = true;
  info = store.import("c", tmp / "src", nullptr, &cancel);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ECANCELED);
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(Store, SweepStagingRemovesLeftovers) {
  TempDir tmp;
  TemplateStore store(tmp / "root");
  write_busybox_tar(tmp / "r.tar", Compression::None);
  ASSERT_TRUE(store.import("kept", tmp / "r.tar", nullptr));
  std::string left = tmp / "root/templates/.staging-crashed-abc123";
  ASSERT_EQ(sh("mkdir -p '" + left + "/rootfs/a/b' && echo x > '" + left + "/rootfs/a/b/f'"), 0);
  ASSERT_EQ(staging_dirs(tmp / "root").size(), 1u);
  store.sweep_staging();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  EXPECT_TRUE(store.get("kept"));
}

TEST(InitDetection, Variants) {
  struct Case {
    std::function<void(TarBuilder &)> build;
    const char *signal;
    bool present;
  };
  std::vector<Case> cases = {
      {[](TarBuilder &t) { t.symlink("sbin/init", "/lib/systemd/systemd").file("lib/systemd/systemd", "x"); },
       "SIGRTMIN+3", true},
      // usrmerge: /sbin -> usr/sbin, /usr/sbin/init -> ../lib/systemd/systemd
      {[](TarBuilder &t) {
         t.symlink("sbin", "usr/sbin").symlink("usr/sbin/init", "../lib/systemd/systemd");
         t.file("usr/lib/systemd/systemd", "x");
       },
       "SIGRTMIN+3", true},
      {[](TarBuilder &t) {
         t.file("sbin/init",
                std::string("\x7f"
                            "ELF...BusyBox v1.35.0...",
                            26),
                0755);
       },
       "SIGUSR2", true},
      {[](TarBuilder &t) { t.file("sbin/init", "sysvinit", 0755); }, "SIGPWR", true},
      {[](TarBuilder &t) { t.symlink("sbin/init", "/nowhere"); }, "SIGPWR", false},
      {[](TarBuilder &t) { t.dir("etc"); }, "SIGPWR", false},
  };
  TempDir tmp;
  TemplateStore store(tmp / "root");
  int i = 0;
  for (const auto &c : cases) {
    std::string tar = tmp / ("i" + std::to_string(i) + ".tar");
    {
      TarBuilder t(tar);
      c.build(t);
    }
    auto info = store.import("i" + std::to_string(i), tar, nullptr);
    ASSERT_TRUE(info) << i << ": " << info.error().text();
    EXPECT_EQ(info->stop_signal, c.signal) << i;
    EXPECT_EQ(info->init_present, c.present) << i;
    EXPECT_EQ(info->init, "/sbin/init") << i;
    ++i;
  }
}

} // namespace
} // namespace bulkhead::storage::test
