// File descriptors: the container process gets stdio and nothing else, whatever the caller leaked.
#include "harness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

using namespace bh_test;

namespace {

class FdTest : public BulkheadTest {
protected:
  // `ls /proc/self/fd` lists 0 1 2 plus the directory fd ls itself opened (3).
  static ::testing::AssertionResult only_stdio(const std::string &ls_output) {
    std::set<std::string> fds;
    for (auto &l : split_lines(ls_output))
      if (!trim(l).empty())
        fds.insert(trim(l));
    for (const char *want : {"0", "1", "2"})
      if (!fds.count(want))
        return ::testing::AssertionFailure() << "fd " << want << " missing: " << ls_output;
    fds.erase("0");
    fds.erase("1");
    fds.erase("2");
    fds.erase("3");
    if (!fds.empty())
      return ::testing::AssertionFailure() << "extra fds reached the container: " << ls_output;
    return ::testing::AssertionSuccess();
  }

  // An fd the test process deliberately leaves inheritable (no O_CLOEXEC) at a recognisable number.
  struct LeakedFd {
    int fd = -1;
    explicit LeakedFd(const std::string &path) {
      int f = ::open(path.c_str(), O_RDONLY | O_CREAT, 0644); // no O_CLOEXEC on purpose
      if (f >= 0) {
        fd = ::dup2(f, 47);
        ::close(f);
      }
    }
    ~LeakedFd() {
      if (fd >= 0)
        ::close(fd);
    }
  };
};

TEST_F(FdTest, RunGivesOnlyStdio) {
  auto r = run_container({"ls", "/proc/self/fd"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(only_stdio(r.out));
}

TEST_F(FdTest, InheritedFdDoesNotReachRunContainer) {
  LeakedFd leak(tmp() + "/leak-marker");
  ASSERT_EQ(leak.fd, 47);
  auto r = run_container({"ls", "-l", "/proc/self/fd"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(contains(r.out, "leak-marker")) << r;
  EXPECT_FALSE(contains(r.out, " 47 ")) << r;
  auto plain = run_container({"ls", "/proc/self/fd"});
  EXPECT_TRUE(only_stdio(plain.out)) << plain;
}

TEST_F(FdTest, InheritedFdDoesNotReachCreatedContainer) {
  std::string bundle = make_bundle({"sh", "-c", "ls /proc/self/fd > /fds; ls -l /proc/self/fd > /fds-long"});
  pid_t pid = 0;
  {
    LeakedFd leak(tmp() + "/leak-marker");
    ASSERT_EQ(leak.fd, 47);
    pid = create(bundle, "fds");
  }
  ASSERT_GT(pid, 0);
  auto s = bh({"start", "fds"});
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(wait_for_status("fds", "stopped"), "stopped");
  std::string fds = read_file(rootfs(bundle) + "/fds");
  EXPECT_TRUE(only_stdio(fds));
  EXPECT_FALSE(contains(read_file(rootfs(bundle) + "/fds-long"), "leak-marker"))
      << read_file(rootfs(bundle) + "/fds-long");
}

TEST_F(FdTest, InitFdsWhileCreated) {
  // Between create and start the init may hold runtime-internal fds, but never the caller's.
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = 0;
  {
    LeakedFd leak(tmp() + "/leak-marker");
    pid = create(bundle, "held");
  }
  ASSERT_GT(pid, 0);
  std::error_code ec;
  for (auto &e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec).string();
    EXPECT_FALSE(contains(target, "leak-marker")) << "fd " << e.path().filename() << " -> " << target;
  }
}

} // namespace
