// Limits and lxcfs inside a system container: needs cgroup v2 with controllers (tests/vm) and
// lxcfs (FUSE). Run with: tests/vm/run-in-vm.sh -- BUILD/tests/bulkhead_monitor_tests
// --gtest_filter='MonitorVm*'
#include <csignal>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "harness.hpp"

namespace bh_mon {

namespace {

constexpr const char *kLxcfsDir = "/var/lib/lxcfs";

// lxcfs serving kLxcfsDir: the one already running, or one started (and stopped) by the test.
class Lxcfs {
public:
  bool start(std::string *why) {
    if (ready())
      return true;
    if (!path_exists("/usr/bin/lxcfs")) {
      *why = "/usr/bin/lxcfs is not installed (tests/install-deps.sh installs it)";
      return false;
    }
    if (!path_exists("/dev/fuse")) {
      *why = "/dev/fuse is missing (no fuse module)";
      return false;
    }
    ::mkdir(kLxcfsDir, 0755);
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDOUT_FILENO); // its start-up banner; errors stay on stderr
      ::execl("/usr/bin/lxcfs", "lxcfs", kLxcfsDir, nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !ready(); ++i)
      std::this_thread::sleep_for(50ms);
    if (!ready())
      *why = "lxcfs did not come up on /var/lib/lxcfs";
    return ready();
  }
  ~Lxcfs() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      ::umount2(kLxcfsDir, MNT_DETACH);
    }
  }

private:
  static bool ready() { return !read_file(std::string(kLxcfsDir) + "/proc/meminfo").empty(); }
  pid_t pid_ = -1;
};

double first_number(const std::string &text) { return std::strtod(text.c_str(), nullptr); }

} // namespace

// Its own fixture name, so --gtest_filter='MonitorVm*' selects the VM-only tests.
class MonitorVmTest : public MonitorTest {};

TEST_F(MonitorVmTest, LimitsAndLxcfs) {
  if (!has_memory_controller())
    GTEST_SKIP() << "/sys/fs/cgroup has no memory controller (run it in tests/vm/run-in-vm.sh)";
  Lxcfs lxcfs;
  std::string why;
  ASSERT_TRUE(lxcfs.start(&why)) << why;
  lxcfs_dir_ = kLxcfsDir;
  json r = start([](auto &c) {
    c.limits.memory_bytes = 256ull << 20;
    c.limits.cpus = 0.5;
    c.limits.pids = 100;
  });
  ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();

  EXPECT_EQ(exec({"cat", "/sys/fs/cgroup/memory.max"}).out, "268435456\n");
  EXPECT_EQ(exec({"cat", "/sys/fs/cgroup/pids.max"}).out, "100\n");
  EXPECT_EQ(exec({"cat", "/sys/fs/cgroup/cpu.max"}).out, "50000 100000\n");

  // /proc/meminfo comes from lxcfs, rendered from the container's memory.max. (busybox's free
  // takes its total from sysinfo(2), which lxcfs cannot change; procps' free reads meminfo.)
  auto meminfo = exec({"cat", "/proc/meminfo"});
  ASSERT_EQ(meminfo.code, 0) << meminfo.error << meminfo.err;
  EXPECT_EQ(meminfo.out.rfind("MemTotal:", 0), 0u) << meminfo.out;
  EXPECT_NE(meminfo.out.find("MemTotal:         262144 kB\n"), std::string::npos) << meminfo.out;
  std::printf("container /proc/meminfo:\n%s", meminfo.out.substr(0, 200).c_str());
  auto free = exec({"free", "-m"});
  std::printf("container free -m:\n%s", free.out.c_str());

  // uptime reads /proc/uptime: the container's, counted from its init, not the machine's.
  auto uptime = exec({"cat", "/proc/uptime"});
  ASSERT_EQ(uptime.code, 0) << uptime.error;
  double container_up = first_number(uptime.out);
  double host_up = first_number(read_file("/proc/uptime"));
  EXPECT_LT(container_up, 30) << uptime.out;
  EXPECT_LT(container_up + 1, host_up) << uptime.out << " vs host " << host_up;
  EXPECT_EQ(exec({"uptime"}).code, 0);

  kill_init(SIGKILL);
  ASSERT_TRUE(wait_monitor().has_value());
  EXPECT_TRUE(mounts_containing(rootfs()).empty());
  EXPECT_FALSE(path_exists("/sys/fs/cgroup" + cgroups_path_));
}

} // namespace bh_mon
