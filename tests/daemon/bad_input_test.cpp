// Bad input gets a one-line error, a 4xx and nothing half-made.
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon_fixture.hpp"

namespace bh_test {

using DaemonBadInputTest = DaemonTest;

TEST_F(DaemonBadInputTest, ClearErrorsAndNothingHalfMade) {
  start_daemon();
  import_busybox();
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"create", "Bad_Name", "--template", "busybox"}, "Bad_Name"},
      {{"create", "-leadingdash", "--template", "busybox"}, ""},
      {{"create", std::string(64, 'a'), "--template", "busybox"}, "aaaa"},
      {{"create", "c1", "--template", "nosuch"}, "nosuch"},
      {{"create", "c1", "--template", "busybox", "--memory", "lots"}, "lots"},
      {{"create", "c1", "--template", "busybox", "--restart", "sometimes"}, "sometimes"},
      {{"create", "c1", "--template", "busybox", "--cpus", "-1"}, "cpus"},
      {{"start", "nosuch"}, "nosuch"},
  };
  for (const auto &c : cases) {
    auto r = ctl(c.args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "bulkheadctl: ")) << r;
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r;
    if (!c.expect.empty()) {
      EXPECT_TRUE(contains(r.err, c.expect)) << r;
    }
  }
  EXPECT_EQ(json::parse(ctl({"list", "--json"}).out).size(), 0u);
  EXPECT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());
  auto dup = ctl({"create", "c1", "--template", "busybox"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_TRUE(contains(dup.err, "already exists")) << dup;

  auto h = http("POST", "/1.0/containers", R"({"name":"c2","template":"busybox","colour":"red"})");
  EXPECT_EQ(h.status, 400);
  EXPECT_TRUE(contains(h.body.value("error", ""), "colour")) << h.body.dump();
  h = http("POST", "/1.0/containers", R"({"name":"c2","template":)");
  EXPECT_EQ(h.status, 400);
  EXPECT_TRUE(contains(h.body.value("error", ""), "malformed JSON")) << h.body.dump();
  h = http("POST", "/1.0/containers", "{\"name\":\"" + std::string(2 << 20, 'x') + "\"}");
  EXPECT_EQ(h.status, 413);
  h = http("GET", "/1.0/nothing");
  EXPECT_EQ(h.status, 404);
  h = http("PATCH", "/1.0/containers/c1", R"({"memory":"1K"})");
  EXPECT_EQ(h.status, 400);
  EXPECT_FALSE(path_exists(root_ + "/containers/c2"));

  // A template whose archive escapes: refused, and no template is left behind.
  std::string evil = dir_ + "/evil";
  ASSERT_EQ(run_command({"mkdir", "-p", evil}).exit_code, 0);
  write_file(evil + "/x", "x");
  ASSERT_TRUE(
      run_command({"tar", "-C", evil, "-cf", dir_ + "/evil.tar", "--transform", "s,^,../../,", "x"}).ok());
  auto r = ctl({"template", "import", "evil", dir_ + "/evil.tar"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "..")) << r;
  EXPECT_EQ(json::parse(ctl({"template", "list", "--json"}).out).size(), 1u);

  // Not root and not in group bulkhead: refused by the socket mode or, past it, by SO_PEERCRED.
  passwd *nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  ::chmod(dir_.c_str(), 0755);
  auto as_nobody = run_command({"setpriv", "--reuid=" + std::to_string(nobody->pw_uid),
                                "--regid=" + std::to_string(nobody->pw_gid), "--clear-groups",
                                bulkheadctl_path(), "--socket", socket_, "list"});
  EXPECT_EQ(as_nobody.exit_code, 1) << as_nobody;
  EXPECT_TRUE(contains(as_nobody.err, "ermission denied")) << as_nobody;
  ::chmod(socket_.c_str(), 0666); // loosened by hand: the peer check still refuses
  as_nobody = run_command({"setpriv", "--reuid=" + std::to_string(nobody->pw_uid),
                           "--regid=" + std::to_string(nobody->pw_gid), "--clear-groups", bulkheadctl_path(),
                           "--socket", socket_, "list"});
  EXPECT_EQ(as_nobody.exit_code, 1) << as_nobody;
  EXPECT_TRUE(contains(as_nobody.err, "ermission denied")) << as_nobody;
}

// Disk limits with the default quota-less "dir" backend (the ext4 backend's loop devices are tested
// in the VM: tests/daemon/vm-quota.sh): bad sizes and a limit the backend cannot keep are refused
// clearly and make nothing; usage.disk is still reported, from a walk of the upper directory.
TEST_F(DaemonBadInputTest, DiskLimitsClearErrors) {
  start_daemon();
  import_busybox();
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"create", "d1", "--template", "busybox", "--disk", "lots"}, "lots"},
      {{"create", "d1", "--template", "busybox", "--disk", "12Q"}, "12Q"},
      {{"create", "d1", "--template", "busybox", "--disk-inodes", "many"}, "many"},
      {{"create", "d1", "--template", "busybox", "--disk-inodes", "0"}, "number of files"},
      {{"create", "d1", "--template", "busybox", "--disk", "1M"}, "below the 16 MiB minimum"},
      {{"create", "d1", "--template", "busybox", "--disk", "2G"}, "--storage dir"},
      {{"create", "d1", "--template", "busybox", "--disk-inodes", "1000"}, "--storage dir"},
  };
  for (const auto &c : cases) {
    auto r = ctl(c.args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r;
    EXPECT_TRUE(contains(r.err, c.expect)) << r;
  }
  EXPECT_FALSE(path_exists(root_ + "/containers/d1"));
  auto h = http("POST", "/1.0/containers", R"({"name":"d1","template":"busybox","disk":"2X"})");
  EXPECT_EQ(h.status, 400);
  EXPECT_TRUE(contains(h.body.value("error", ""), "2X")) << h.body.dump();
  h = http("POST", "/1.0/containers", R"({"name":"d1","template":"busybox","disk_inodes":-5})");
  EXPECT_EQ(h.status, 400);
  EXPECT_TRUE(contains(h.body.value("error", ""), "disk_inodes")) << h.body.dump();
  EXPECT_FALSE(path_exists(root_ + "/containers/d1"));

  ASSERT_TRUE(ctl({"create", "d1", "--template", "busybox"}).ok());
  auto set = ctl({"set", "d1", "--disk", "2G"});
  EXPECT_EQ(set.exit_code, 1) << set;
  EXPECT_TRUE(contains(set.err, "no disk quota")) << set;
  h = http("PATCH", "/1.0/containers/d1", R"({"disk_inodes":5000})");
  EXPECT_EQ(h.status, 400);
  EXPECT_TRUE(contains(h.body.value("error", ""), "inode limit is fixed")) << h.body.dump();

  auto before = json::parse(ctl({"info", "d1", "--json"}).out);
  EXPECT_EQ(before["storage"], "dir");
  EXPECT_TRUE(before["limits"]["disk"].is_null());
  write_file(root_ + "/containers/d1/disk/upper/blob", std::string(256 << 10, 'x'));
  auto after = json::parse(ctl({"info", "d1", "--json"}).out);
  EXPECT_GE(after["usage"]["disk"].get<uint64_t>(), before["usage"]["disk"].get<uint64_t>() + (256u << 10))
      << after.dump();
  EXPECT_EQ(after["usage"]["disk_inodes"].get<uint64_t>(), before["usage"]["disk_inodes"].get<uint64_t>() + 1)
      << after.dump();
  // The list may answer from a walk up to 10 s old, but never from before the fresh info above.
  auto listed = json::parse(ctl({"list", "--json"}).out);
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["usage"]["disk"], after["usage"]["disk"]) << listed.dump();
  // An upper directory that vanished is reported as such, not as an empty container.
  const std::string upper = root_ + "/containers/d1/disk/upper";
  ASSERT_EQ(::rename(upper.c_str(), (upper + ".away").c_str()), 0);
  auto gone = json::parse(ctl({"info", "d1", "--json"}).out);
  EXPECT_TRUE(contains(gone["usage"].value("disk_error", ""), upper)) << gone.dump();
  ASSERT_EQ(::rename((upper + ".away").c_str(), upper.c_str()), 0);
  EXPECT_TRUE(ctl({"destroy", "d1"}).ok());
  EXPECT_FALSE(path_exists(root_ + "/containers/d1"));
}

TEST_F(DaemonBadInputTest, DaemonNotRunningSaysHowToStartIt) {
  auto r = ctl({"list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "bulkheadd")) << r;
  EXPECT_TRUE(contains(r.err, socket_)) << r;
}

} // namespace bh_test
