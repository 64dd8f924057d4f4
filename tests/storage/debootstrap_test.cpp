// debootstrap: mirror/proxy detection always; a real debootstrap run (minutes, network) only with
// BULKHEAD_TEST_DEBOOTSTRAP=1.
#include <atomic>
#include <chrono>
#include <thread>

#include "helpers.hpp"
#include "storage/debootstrap.hpp"

namespace bulkhead::storage::test {
namespace {

TEST(Debootstrap, MirrorFromDeb822Sources) {
  TempDir tmp;
  sh("mkdir -p '" + (tmp / "sources.list.d") + "'");
  spit(tmp / "sources.list.d/other.sources", "Types: deb\nURIs: http://other.example/debian\n");
  spit(tmp / "sources.list.d/debian.sources",
       "Types: deb\n# comment\nURIs: cdrom:/x http://mirror.example/debian\nSuites: bookworm\n");
  EXPECT_EQ(default_mirror(tmp / "sources.list.d", tmp / "sources.list"), "http://mirror.example/debian");
}

TEST(Debootstrap, MirrorFromSourcesList) {
  TempDir tmp;
  spit(tmp / "sources.list", "# deb http://commented.example/ bookworm main\n"
                             "deb-src http://src.example/ bookworm main\n"
                             "deb [arch=amd64 signed-by=/k.gpg] https://list.example/debian bookworm main\n");
  EXPECT_EQ(default_mirror(tmp / "none.d", tmp / "sources.list"), "https://list.example/debian");
  EXPECT_EQ(default_mirror(tmp / "none.d", tmp / "none"), "");
}

TEST(Debootstrap, ProxyFromAptConf) {
  TempDir tmp;
  spit(tmp / "01proxy", "// x\nAcquire::http::Proxy \"http://proxy.example:3128\";\n");
  EXPECT_EQ(apt_http_proxy(tmp.path()), "http://proxy.example:3128");
  TempDir empty;
  EXPECT_EQ(apt_http_proxy(empty.path()), "");
}

TEST(Debootstrap, RefusesBadArguments) {
  TempDir tmp;
  TemplateStore store(tmp / "root");
  auto r = store.debootstrap("x", "--foreign", "http://deb.debian.org/debian", nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  r = store.debootstrap("x", "bookworm", "ftp://x y", nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
}

bool enabled() {
  const char *e = std::getenv("BULKHEAD_TEST_DEBOOTSTRAP");
  return e != nullptr && std::string(e) == "1";
}

TEST(Debootstrap, CancelKillsAndCleansUp) {
  if (!enabled())
    GTEST_SKIP() << "set BULKHEAD_TEST_DEBOOTSTRAP=1 to run debootstrap (needs the mirror, takes minutes)";
  TempDir tmp;
  TemplateStore store(tmp / "root");
  std::atomic<bool> cancel{false};
  int lines = 0;
  auto r = store.debootstrap(
      "cancelled", "bookworm", "",
      [&](const Progress &) {
        if (++lines == 5)
          cancel = true;
      },
      &cancel);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ECANCELED) << r.error().text();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(Debootstrap, BookwormMinbase) {
  if (!enabled())
    GTEST_SKIP() << "set BULKHEAD_TEST_DEBOOTSTRAP=1 to run debootstrap (needs the mirror, takes minutes)";
  TempDir tmp;
  TemplateStore store(tmp / "root");
  std::vector<std::string> stages;
  auto info =
      store.debootstrap("bookworm", "bookworm", "", [&](const Progress &p) { stages.push_back(p.stage); });
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_EQ(info->source, "debootstrap:bookworm");
  EXPECT_GT(stages.size(), 10u);
  std::string r = store.rootfs_path("bookworm");
  EXPECT_TRUE(exists(r + "/usr/bin/apt-get"));
  EXPECT_NE(slurp(r + "/etc/os-release").find("bookworm"), std::string::npos);
  EXPECT_FALSE(exists(r + "/dev/null")) << "device nodes are removed";
  // minbase has no init; the template gets systemd (systemd-sysv) so that a system container boots.
  EXPECT_TRUE(info->init_present);
  EXPECT_EQ(info->stop_signal, "SIGRTMIN+3");
  EXPECT_TRUE(exists(r + "/lib/systemd/systemd"));
  EXPECT_GT(info->files, 1000u);
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

} // namespace
} // namespace bulkhead::storage::test
