// The root filesystem: root.readonly, maskedPaths, readonlyPaths, /dev, linux.devices, and mount
// destinations that try to escape the rootfs through symlinks.
#include "harness.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

using namespace bh_test;

namespace {

class RootfsTest : public BulkheadTest {
protected:
  static void add_caps(json &c, std::initializer_list<const char *> caps) {
    for (const char *set : {"bounding", "effective", "permitted"})
      for (const char *cap : caps)
        c["process"]["capabilities"][set].push_back(cap);
  }

  // The directory on the host that the symlinks in the rootfs point at, and what it held before.
  void escape_check(const std::string &link_target, const std::string &hostdir);
};

TEST_F(RootfsTest, RootIsTheBundleRootfsAndWritableByDefault) {
  std::string bundle = make_bundle({"sh", "-c", "echo inside > /written"});
  auto r = bh({"run", "--bundle", bundle, "rw"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(read_file(rootfs(bundle) + "/written"), "inside\n");
}

TEST_F(RootfsTest, AbsoluteRootPath) {
  std::string bundle = make_bundle({"sh", "-c", "echo abs > /written"});
  auto config = json::parse(read_file(bundle + "/config.json"));
  config["root"]["path"] = rootfs(bundle);
  write_config(bundle, config);
  auto r = bh({"run", "--bundle", bundle, "abs"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(read_file(rootfs(bundle) + "/written"), "abs\n");
}

TEST_F(RootfsTest, ReadonlyRoot) {
  std::string bundle = make_bundle({"sh", "-c", "touch /x; echo rc=$?; touch /dev/shm/ok; echo rc2=$?"},
                                   [](json &c) { c["root"]["readonly"] = true; });
  auto r = bh({"run", "--bundle", bundle, "ro"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"rc=1", "rc2=0"})) << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/x"));
}

TEST_F(RootfsTest, MaskedFileIsEmptyCharDevice) {
  // /proc/kcore when this kernel has it (it often does not in VMs), else another default masked
  // /proc file; plus a file of the rootfs masked through the config.
  std::string proc_file = "/proc/kcore";
  for (const char *candidate : {"/proc/kcore", "/proc/keys", "/proc/timer_list"}) {
    if (path_exists(candidate)) {
      proc_file = candidate;
      break;
    }
  }
  std::string bundle = make_bundle(
      {"sh", "-c", "for f in " + proc_file + " /secretfile; do stat -c '%n %F %t:%T' $f; wc -c < $f; done"},
      [](json &c) { c["linux"]["maskedPaths"].push_back("/secretfile"); });
  ASSERT_TRUE(write_file(rootfs(bundle) + "/secretfile", "do not read\n"));
  auto r = bh({"run", "--bundle", bundle, "maskedfile"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{proc_file + " character special file 1:3", "0",
                                                          "/secretfile character special file 1:3", "0"}))
      << "masked files must be /dev/null: " << r;
  EXPECT_EQ(read_file(rootfs(bundle) + "/secretfile"), "do not read\n");
}

TEST_F(RootfsTest, MaskedDirectoryIsEmpty) {
  std::string bundle = make_bundle({"sh", "-c", "ls -A /secret; echo end; ls -A /sys/firmware"},
                                   [](json &c) { c["linux"]["maskedPaths"].push_back("/secret"); });
  ASSERT_EQ(::mkdir((rootfs(bundle) + "/secret").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(rootfs(bundle) + "/secret/key", "do not read\n"));
  auto r = bh({"run", "--bundle", bundle, "masked"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "end\n") << "masked directories must look empty: " << r;
  EXPECT_EQ(read_file(rootfs(bundle) + "/secret/key"), "do not read\n");
}

TEST_F(RootfsTest, ReadonlyProcSys) {
  // With CAP_SYS_ADMIN only the read-only mount stops the write (without it EPERM would hide a
  // missing remount).
  auto r = run_container(
      {"sh", "-c", "grep ' /proc/sys ' /proc/self/mountinfo; echo x > /proc/sys/kernel/domainname"},
      [](json &c) { add_caps(c, {"CAP_SYS_ADMIN"}); });
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  auto words = split_words(r.out);
  ASSERT_GT(words.size(), 5u) << r;
  EXPECT_EQ(words[5].substr(0, 3), "ro,") << r;
}

TEST_F(RootfsTest, ReadonlyPathInRootfs) {
  std::string bundle = make_bundle({"sh", "-c", "cat /rodir/f && touch /rodir/g"},
                                   [](json &c) { c["linux"]["readonlyPaths"].push_back("/rodir"); });
  ASSERT_EQ(::mkdir((rootfs(bundle) + "/rodir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(rootfs(bundle) + "/rodir/f", "readable\n"));
  auto r = bh({"run", "--bundle", bundle, "rodir"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "readable\n") << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/rodir/g"));
}

TEST_F(RootfsTest, DefaultDevices) {
  auto r = run_container(
      {"sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n|%F|%t:%T|%a' /dev/$d; done"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{
                                    "/dev/null|character special file|1:3|666",
                                    "/dev/zero|character special file|1:5|666",
                                    "/dev/full|character special file|1:7|666",
                                    "/dev/random|character special file|1:8|666",
                                    "/dev/urandom|character special file|1:9|666",
                                    "/dev/tty|character special file|5:0|666",
                                }))
      << r;
}

TEST_F(RootfsTest, DefaultDevicesWork) {
  auto r = run_container(
      {"sh", "-c",
       "head -c 8 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; echo x > /dev/null && echo "
       "null-ok; echo x > /dev/full || echo full-fails"});
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"8", "8", "null-ok", "full-fails"})) << r;
  EXPECT_TRUE(contains(r.err, "No space left on device")) << r;
}

TEST_F(RootfsTest, DevSymlinks) {
  auto r = run_container(
      {"sh", "-c", "for l in ptmx fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{
                                    "ptmx -> pts/ptmx",
                                    "fd -> /proc/self/fd",
                                    "stdin -> /proc/self/fd/0",
                                    "stdout -> /proc/self/fd/1",
                                    "stderr -> /proc/self/fd/2",
                                }))
      << r;
}

TEST_F(RootfsTest, ConfiguredDevicesAreCreated) {
  auto r =
      run_container({"sh", "-c", "stat -c '%n|%F|%t:%T|%a|%u|%g' /dev/mydev /dev/sub/mydev2"}, [](json &c) {
        c["linux"]["devices"] = {
            {{"path", "/dev/mydev"},
             {"type", "c"},
             {"major", 1},
             {"minor", 3},
             {"fileMode", 0640},
             {"uid", 0},
             {"gid", 0}},
            {{"path", "/dev/sub/mydev2"},
             {"type", "c"},
             {"major", 1},
             {"minor", 5},
             {"fileMode", 0600},
             {"uid", 1234},
             {"gid", 5678}},
        };
      });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{
                                    "/dev/mydev|character special file|1:3|640|0|0",
                                    "/dev/sub/mydev2|character special file|1:5|600|1234|5678",
                                }))
      << r;
}

void RootfsTest::escape_check(const std::string &link_target, const std::string &hostdir) {
  std::string bundle =
      make_bundle({"sh", "-c", "ls -la /evil/; grep evil /proc/self/mountinfo; true"}, [](json &c) {
        c["mounts"].push_back({{"destination", "/evil/x"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
      });
  ASSERT_EQ(::symlink(link_target.c_str(), (rootfs(bundle) + "/evil").c_str()), 0);
  auto r = bh({"run", "--bundle", bundle, "escape"});
  // Either the runtime refused, or the mount landed inside the rootfs: the host stays untouched.
  std::vector<std::string> entries;
  std::error_code ec;
  for (auto &e : std::filesystem::directory_iterator(hostdir, ec))
    entries.push_back(e.path().filename().string());
  EXPECT_TRUE(entries.empty()) << "the mount escaped to the host dir " << hostdir
                               << ", which now holds: " << ::testing::PrintToString(entries) << "\n"
                               << r;
  EXPECT_TRUE(no_new_mounts()) << r;
  EXPECT_FALSE(state_dir_exists("escape")) << r;
  std::cerr << "[ info     ] symlink escape via " << link_target << ": exit " << r.exit_code << ", "
            << trim(r.err) << "\n";
}

TEST_F(RootfsTest, MountDestinationAbsoluteSymlinkDoesNotEscape) {
  std::string hostdir = make_temp_dir("hostdir");
  escape_check(hostdir, hostdir);
}

TEST_F(RootfsTest, MountDestinationRelativeSymlinkDoesNotEscape) {
  std::string hostdir = make_temp_dir("hostdir");
  escape_check("../../../../../../../.." + hostdir, hostdir);
}

} // namespace
