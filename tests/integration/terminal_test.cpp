// process.terminal: a pty from the container's devpts, sent over --console-socket or relayed by a
// foreground run; /dev/console is that pty.
#include "harness.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace bh_test;

namespace {

class TerminalTest : public BulkheadTest {
protected:
  int listen_console(const std::string &path) {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(s, 1), 0);
    return s;
  }
  static int receive_fd(int conn) {
    char name[256];
    struct iovec iov {
      name, sizeof name
    };
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    if (::recvmsg(conn, &mh, MSG_CMSG_CLOEXEC) < 0)
      return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_type != SCM_RIGHTS)
      return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
  static std::string read_until(int fd, const std::string &marker, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!contains(out, marker) && std::chrono::steady_clock::now() < deadline) {
      struct pollfd p {
        fd, POLLIN, 0
      };
      if (::poll(&p, 1, 100) <= 0)
        continue;
      char buf[512];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

TEST_F(TerminalTest, ConsoleSocketReceivesThePtyMaster) {
  auto sock_path = tmp() + "/console.sock";
  int listener = listen_console(sock_path);
  auto bundle =
      make_bundle({"sh", "-c", "tty; ls -l /dev/console; stty size; echo done-$((40+2))"}, [](json &c) {
        c["process"]["terminal"] = true;
        c["process"]["consoleSize"] = {{"height", 33}, {"width", 101}};
      });
  auto create = bh_spawn({"create", "--bundle", bundle, "--console-socket", sock_path, "tty1"});
  int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  int master = receive_fd(conn);
  ASSERT_GE(master, 0) << "no fd received over the console socket";
  auto created = create.wait();
  ASSERT_EQ(created.exit_code, 0) << created;
  ASSERT_TRUE(bh({"start", "tty1"}).ok());
  auto out = read_until(master, "done-42", 10s);
  EXPECT_TRUE(contains(out, "/dev/pts/0")) << out;
  EXPECT_TRUE(contains(out, "136,")) << "/dev/console is not the pty: " << out;
  EXPECT_TRUE(contains(out, "33 101")) << out;
  EXPECT_TRUE(contains(out, "done-42")) << out;
  ::close(master);
  ::close(conn);
  ::close(listener);
}

TEST_F(TerminalTest, CreateWithoutConsoleSocketFailsCleanly) {
  auto bundle = make_bundle({"sh"}, [](json &c) { c["process"]["terminal"] = true; });
  auto r = bh({"create", "--bundle", bundle, "t"});
  EXPECT_TRUE(failed_cleanly(r, "console-socket", "t"));
}

TEST_F(TerminalTest, ForegroundRunRelaysThePty) {
  if (::access("/usr/bin/script", X_OK) != 0)
    GTEST_SKIP() << "script(1) is not installed";
  auto bundle = make_bundle({"sh", "-c", "tty; exit 7"}, [](json &c) { c["process"]["terminal"] = true; });
  std::string cmd = runtime_path() + " --root " + root() + " run --bundle " + bundle + " fg";
  auto r = run_command({"/usr/bin/script", "-qec", cmd, "/dev/null"});
  EXPECT_EQ(r.exit_code, 7) << r;
  EXPECT_TRUE(contains(r.out, "/dev/pts/0")) << r;
  EXPECT_FALSE(state_dir_exists("fg"));
}

TEST_F(TerminalTest, ExecWithTtyGetsItsOwnPty) {
  if (::access("/usr/bin/script", X_OK) != 0)
    GTEST_SKIP() << "script(1) is not installed";
  auto bundle = make_bundle({"sleep", "100"});
  ASSERT_GT(create_and_start(bundle, "ex"), 0);
  std::string cmd = runtime_path() + " --root " + root() + " exec -t ex sh -c 'tty; exit 3'";
  auto r = run_command({"/usr/bin/script", "-qec", cmd, "/dev/null"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_TRUE(contains(r.out, "/dev/pts/")) << r;
}

} // namespace
