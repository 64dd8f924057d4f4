// The parts of runc's command-line contract that engines lean on beyond the lifecycle: systemd
// socket activation (LISTEN_FDS), --pidfd-socket, and `delete --force` after a failed create.
#include "harness.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

using namespace bh_test;

namespace {

class ClientContractTest : public BulkheadTest {
protected:
  // A listening unix socket; receive() accepts one connection and returns the pid named in the
  // fdinfo of the fd that arrived with SCM_RIGHTS (a pidfd reports "Pid:").
  struct PidfdReceiver {
    int listener = -1;
    std::string path;
    explicit PidfdReceiver(const std::string &p) : path(p) {
      listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
      if (::bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0 ||
          ::listen(listener, 1) < 0) {
        ::close(listener);
        listener = -1;
      }
    }
    ~PidfdReceiver() {
      if (listener >= 0)
        ::close(listener);
    }
    std::string receive() const {
      int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0)
        return "accept failed";
      char data[16];
      char control[CMSG_SPACE(sizeof(int))] = {};
      iovec iov{data, sizeof data};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
      ::close(conn);
      cmsghdr *c = CMSG_FIRSTHDR(&msg);
      if (n <= 0 || !c || c->cmsg_type != SCM_RIGHTS)
        return "no fd received";
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      std::string pid = "no Pid: line";
      for (const auto &line : split_lines(read_file("/proc/self/fdinfo/" + std::to_string(fd))))
        if (line.rfind("Pid:", 0) == 0)
          pid = trim(line.substr(4));
      ::close(fd);
      return pid;
    }
  };

  // `sh` opens fd 3 on `file` and execs bulkhead with LISTEN_PID naming bulkhead itself ($$
  // survives the exec) unless `listen_pid` is given.
  CommandResult run_activated(const std::string &bundle, const std::string &id, const std::string &file,
                              const std::string &listen_pid = "$$") {
    std::string script = "exec 3<'" + file + "'; export LISTEN_FDS=1 LISTEN_PID=" + listen_pid + "; exec '" +
                         runtime_path() + "' --root '" + root() + "' run --bundle '" + bundle + "' " + id;
    return run_command({"/bin/sh", "-c", script});
  }
};

TEST_F(ClientContractTest, SocketActivationFdsAndVariablesReachTheProcess) {
  write_file(tmp() + "/activation", "passed-on\n");
  std::string bundle = make_bundle({"sh", "-c", "echo \"$LISTEN_FDS $LISTEN_PID\"; cat <&3"}, [](json &c) {
    c["process"]["env"].push_back("LISTEN_FDS=7"); // the runtime's own count wins
  });
  auto r = run_activated(bundle, "activated", tmp() + "/activation");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "1 1\npassed-on\n") << r; // pid 1: LISTEN_PID as the process sees itself
}

TEST_F(ClientContractTest, SocketActivationForAnotherPidIsIgnored) {
  write_file(tmp() + "/activation", "must-not-pass\n");
  std::string bundle =
      make_bundle({"sh", "-c", "echo \"[${LISTEN_FDS:-unset}]\"; cat <&3 2>/dev/null || echo no-fd-3"});
  auto r = run_activated(bundle, "not-ours", tmp() + "/activation", "1");
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "[unset]\nno-fd-3\n") << r;
}

TEST_F(ClientContractTest, PidfdSocketReceivesInitsPidfdOnCreate) {
  PidfdReceiver rx(tmp() + "/pidfd.sock");
  ASSERT_GE(rx.listener, 0);
  auto got = std::async(std::launch::async, [&] { return rx.receive(); });
  std::string bundle = make_bundle({"sleep", "100"});
  auto c = bh({"create", "--bundle", bundle, "--pid-file", pid_file("pf"), "--pidfd-socket", rx.path, "pf"});
  ASSERT_TRUE(c.ok()) << c;
  ASSERT_EQ(got.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(got.get(), std::to_string(read_pid_file(pid_file("pf"))));
  EXPECT_TRUE(bh({"delete", "--force", "pf"}).ok());
}

TEST_F(ClientContractTest, PidfdSocketReceivesTheExecProcessPidfd) {
  std::string bundle = make_bundle({"sleep", "100"});
  ASSERT_GT(create_and_start(bundle, "pe"), 0);
  PidfdReceiver rx(tmp() + "/exec-pidfd.sock");
  ASSERT_GE(rx.listener, 0);
  auto got = std::async(std::launch::async, [&] { return rx.receive(); });
  std::string pids = tmp() + "/exec.pid";
  auto e = bh({"exec", "--detach", "--pid-file", pids, "--pidfd-socket", rx.path, "pe", "sleep", "50"});
  ASSERT_TRUE(e.ok()) << e;
  ASSERT_EQ(got.wait_for(20s), std::future_status::ready);
  pid_t pid = read_pid_file(pids);
  EXPECT_EQ(got.get(), std::to_string(pid));
  // We are the subreaper of the detached process (as a shim is): reap it while delete runs, or
  // the pid namespace's init cannot finish dying.
  auto del = bh_spawn({"delete", "--force", "pe"});
  for (int i = 0; i < 500 && ::waitpid(pid, nullptr, WNOHANG) != pid; ++i)
    std::this_thread::sleep_for(10ms);
  auto d = del.wait();
  EXPECT_TRUE(d.ok()) << d;
}

TEST_F(ClientContractTest, PidfdSocketThatNobodyListensOnFailsCreateCleanly) {
  std::string bundle = make_bundle({"true"});
  auto c = bh({"create", "--bundle", bundle, "--pidfd-socket", tmp() + "/nobody.sock", "nolistener"});
  EXPECT_NE(c.exit_code, 0) << c;
  EXPECT_TRUE(contains(c.err, "pidfd socket")) << c;
  EXPECT_FALSE(state_dir_exists("nolistener"));
}

TEST_F(ClientContractTest, DeleteForceOfAnAbsentContainerSucceedsPlainDeleteDoesNot) {
  auto forced = bh({"delete", "--force", "never-created"});
  EXPECT_EQ(forced.exit_code, 0) << forced;
  auto plain = bh({"delete", "never-created"});
  EXPECT_NE(plain.exit_code, 0) << plain;
  EXPECT_TRUE(contains(plain.err, "does not exist")) << plain;
}

} // namespace
