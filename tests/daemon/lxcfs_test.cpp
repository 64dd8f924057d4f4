// bulkheadd and a dead lxcfs: a FUSE mount outlives its server and then answers ENOTCONN. A
// daemon that took such a mount for a live lxcfs handed new containers unreadable /proc files
// (seen on this project's CI host); it must detach the dead mount and serve a fresh lxcfs.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_fixture.hpp"

namespace {

using namespace std::chrono_literals;

using bh_test::contains;
using bh_test::read_file;

bool lxcfs_mounted_at(const std::string &dir) {
  for (const auto &line : bh_test::mountinfo_snapshot())
    if (contains(line, " " + dir + " ") && contains(line, "fuse.lxcfs"))
      return true;
  return false;
}

// The lxcfs processes serving `dir` (argv[0] is lxcfs, and dir is an argument: bulkheadd's own
// "--lxcfs-dir dir" must not count).
std::vector<pid_t> lxcfs_serving(const std::string &dir) {
  std::vector<pid_t> pids;
  DIR *proc = ::opendir("/proc");
  while (dirent *d = proc ? ::readdir(proc) : nullptr) {
    pid_t pid = std::atoi(d->d_name);
    if (pid <= 0)
      continue;
    std::string cmd = read_file("/proc/" + std::string(d->d_name) + "/cmdline");
    std::string argv0 = cmd.substr(0, cmd.find('\0'));
    if ((argv0 == "lxcfs" || argv0 == "/usr/bin/lxcfs") && contains(cmd, std::string(1, '\0') + dir))
      pids.push_back(pid);
  }
  if (proc)
    ::closedir(proc);
  return pids;
}

class DaemonLxcfsTest : public bh_test::DaemonTest {
protected:
  void SetUp() override {
    if (::access("/usr/bin/lxcfs", X_OK) < 0 || ::access("/dev/fuse", R_OK | W_OK) < 0)
      GTEST_SKIP() << "needs /usr/bin/lxcfs and /dev/fuse (tests/install-deps.sh installs lxcfs)";
    DaemonTest::SetUp();
    lxcfs_dir_ = dir_ + "/lxcfs";
    ASSERT_EQ(::mkdir(lxcfs_dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!lxcfs_dir_.empty()) {
      for (pid_t pid : lxcfs_serving(lxcfs_dir_))
        ::kill(pid, SIGKILL);
      while (lxcfs_mounted_at(lxcfs_dir_) && ::umount2(lxcfs_dir_.c_str(), MNT_DETACH) == 0) {
      }
      ::unsetenv("BULKHEAD_TEST_LXCFS");
    }
    DaemonTest::TearDown();
  }
  std::string lxcfs_dir_;
};

TEST_F(DaemonLxcfsTest, DeadLxcfsMountIsReplacedAtStart) {
  // An lxcfs that dies with its mount in place.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/usr/bin/lxcfs", "lxcfs", lxcfs_dir_.c_str(), static_cast<char *>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100 && !lxcfs_mounted_at(lxcfs_dir_); ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(lxcfs_mounted_at(lxcfs_dir_)) << "lxcfs did not mount " << lxcfs_dir_;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  struct stat st {};
  ASSERT_NE(::stat((lxcfs_dir_ + "/proc/meminfo").c_str(), &st), 0);
  ASSERT_EQ(errno, ENOTCONN) << "a dead lxcfs's mount should answer ENOTCONN";

  ::setenv("BULKHEAD_TEST_LXCFS", "1", 1);
  start_daemon({"--lxcfs-dir", lxcfs_dir_});
  EXPECT_TRUE(lxcfs_mounted_at(lxcfs_dir_));
  EXPECT_TRUE(contains(read_file(lxcfs_dir_ + "/proc/meminfo"), "MemTotal:"))
      << read_file(dir_ + "/bulkheadd.log");
  EXPECT_EQ(lxcfs_serving(lxcfs_dir_).size(), 1u);
}

} // namespace
