// SCMP_ACT_NOTIFY with a working seccomp agent (issue 16 item 12): the agent below follows the
// runtime-spec's seccomp agent protocol (a unix socket at listenerPath, one connection per filter,
// the notify fd as SCM_RIGHTS next to the container process state) and answers each notification
// with SECCOMP_IOCTL_NOTIF_SEND, so the container sees the agent's decisions.
#include "harness.hpp"

#include <linux/seccomp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

using namespace bh_test;

namespace {

// write(2)s of exactly this many bytes are denied; the shell's own output never has this size.
constexpr unsigned long kDeniedWriteSize = 13; // "denied-write!"

class TestAgent {
public:
  explicit TestAgent(const std::string &path) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ok_ = listen_fd_ >= 0 && ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
          ::listen(listen_fd_, 8) == 0;
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (ok_ && stop_fd_ >= 0)
      thread_ = std::thread([this] { serve(); });
  }
  ~TestAgent() {
    uint64_t one = 1;
    if (stop_fd_ >= 0)
      (void)!::write(stop_fd_, &one, sizeof one);
    if (thread_.joinable())
      thread_.join();
    for (int fd : notify_fds_)
      ::close(fd);
    ::close(listen_fd_);
    ::close(stop_fd_);
  }
  bool ok() const { return ok_; }
  int fds_received() const { return fds_received_; }
  int notified(long nr) {
    std::lock_guard lock(mu_);
    int n = 0;
    for (long s : seen_)
      n += s == nr;
    return n;
  }
  int denied() const { return denied_; }

private:
  void accept_one() {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      return;
    char buf[65536];
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct iovec iov {
      buf, sizeof buf
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    if (::recvmsg(c, &mh, MSG_CMSG_CLOEXEC) > 0)
      if (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm && cm->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        notify_fds_.push_back(fd);
        ++fds_received_;
      }
    ::close(c);
  }

  void answer(int fd) {
    struct seccomp_notif req {}; // the kernel insists on a zeroed buffer
    if (::ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
      return; // the notifying task died, or another reader took it
    struct seccomp_notif_resp resp {};
    resp.id = req.id;
    if (req.data.nr == __NR_write && req.data.args[2] == kDeniedWriteSize) {
      resp.error = -EPERM;
      ++denied_;
    } else {
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    {
      std::lock_guard lock(mu_);
      seen_.push_back(req.data.nr);
    }
    (void)::ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }

  void serve() {
    for (;;) {
      std::vector<struct pollfd> fds{{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (int fd : notify_fds_)
        fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR)
          continue;
        return;
      }
      if (fds[0].revents)
        return;
      if (fds[1].revents & POLLIN)
        accept_one();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents & POLLIN)
          answer(fds[i].fd);
        else if (fds[i].revents & (POLLHUP | POLLERR)) { // every task of that filter is gone
          std::erase(notify_fds_, fds[i].fd);
          ::close(fds[i].fd);
        }
      }
    }
  }

  int listen_fd_ = -1, stop_fd_ = -1;
  bool ok_ = false;
  std::thread thread_;
  std::vector<int> notify_fds_; // only the agent thread touches these until it has stopped
  std::atomic<int> fds_received_{0}, denied_{0};
  std::mutex mu_;
  std::vector<long> seen_;
};

class SeccompAgentTest : public BulkheadTest {};

TEST_F(SeccompAgentTest, CloseRuleIsAnsweredAndADeniedWriteFailsInTheContainer) {
  std::string sock = tmp() + "/agent.sock";
  TestAgent agent(sock);
  ASSERT_TRUE(agent.ok()) << sock;
  // close was refused at create before (it "would block the runtime"); the runtime's own closes
  // after sending the fd are answered by the agent like the container's.
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                             {"listenerPath", sock},
                             {"syscalls", {{{"names", {"close", "write"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  });
  pid_t pid = create_and_start(bundle, "agent");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(status_of("agent"), "running");
  auto r = bh(
      {"exec", "agent", "sh", "-c", "printf denied-write! > /denied; echo rc=$?; echo allowed > /allowed"});
  ASSERT_EQ(r.exit_code, 0) << r;
  // The agent's EPERM is what the write returned in the container: printf fails, nothing written.
  EXPECT_TRUE(contains(r.out, "rc=1")) << r;
  EXPECT_TRUE(path_exists(rootfs(bundle) + "/denied"));
  EXPECT_EQ(read_file(rootfs(bundle) + "/denied"), "");
  // Writes the agent lets through still happen.
  EXPECT_EQ(read_file(rootfs(bundle) + "/allowed"), "allowed\n");
  EXPECT_EQ(agent.fds_received(), 2); // init's filter and the exec'd process's
  EXPECT_GE(agent.denied(), 1);
  EXPECT_GT(agent.notified(__NR_close), 0);
  EXPECT_GT(agent.notified(__NR_write), 0);
}

TEST_F(SeccompAgentTest, ListenerPathWithoutAgentNamesTheSocket) {
  // A socket file nobody listens on (an agent that died) and a path with no socket at all.
  std::string stale = tmp() + "/stale.sock";
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ::close(s);
  for (const std::string &path : {stale, tmp() + "/missing.sock"}) {
    std::string bundle = make_bundle({"true"}, [&](json &c) {
      c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"listenerPath", path},
                               {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
    });
    auto r = bh({"create", "--bundle", bundle, "no-agent"});
    EXPECT_TRUE(failed_cleanly(r, "no seccomp agent could be reached on socket " + path, "no-agent"));
  }
}

} // namespace
