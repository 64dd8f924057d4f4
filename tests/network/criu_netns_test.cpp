// CRIU in a tree's network namespace (migration/criu_netns.hpp): the connection check CRIU's lock
// is skipped on, against real sockets in a namespace of their own, and where CRIU and a thread run.
#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "helpers.hpp"
#include "migration/criu.hpp"
#include "migration/criu_netns.hpp"

using namespace bulkhead;
using namespace bulkhead::net;
using namespace bulkhead::net::test;

namespace {

using CriuNetns = RootOnly;

ino_t netns_inode(const std::string &path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_ino;
}

ino_t fd_inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

bool connected_in(int diag) {
  auto r = migration::has_tcp_connections(diag);
  EXPECT_TRUE(r) << r.error().text();
  return r && *r;
}

// A listener on ADDR:port in `s`, and its address.
UniqueFd listen_in(const Space &s, const char *addr, uint16_t port, sockaddr_storage &ss, socklen_t &len) {
  IpAddress a = ip(addr);
  UniqueFd l = socket_in(s.ns, a.family, SOCK_STREAM);
  ss = sockaddr_of(a, port, len);
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr *>(&ss), len), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(l.get(), 4), 0) << std::strerror(errno);
  return l;
}

// Closed with a reset (SO_LINGER 0): no FIN_WAIT or TIME_WAIT left behind.
void reset_close(UniqueFd &fd) {
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

} // namespace

TEST_F(CriuNetns, ConnectionsCountListenersDoNot) {
  Space s = Space::make();
  auto diag = migration::socket_in_netns(s.ns.fd(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  ASSERT_TRUE(diag) << diag.error().text();
  EXPECT_FALSE(connected_in(diag->get()));

  for (const char *addr : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(addr);
    sockaddr_storage ss{};
    socklen_t len = 0;
    UniqueFd l = listen_in(s, addr, 7001, ss, len);
    UniqueFd unconnected = socket_in(s.ns, ip(addr).family, SOCK_STREAM);
    EXPECT_FALSE(connected_in(diag->get())) << "a listener and a socket never connected are no connection";

    // Still in the listener's queue (not accepted): it counts, CRIU would fail on it.
    UniqueFd client = socket_in(s.ns, ip(addr).family, SOCK_STREAM);
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr *>(&ss), len), 0) << std::strerror(errno);
    EXPECT_TRUE(connected_in(diag->get()));
    UniqueFd served(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(served) << std::strerror(errno);
    EXPECT_TRUE(connected_in(diag->get()));
    EXPECT_TRUE(connected_in(diag->get())) << "asked again on the same socket";

    reset_close(client);
    reset_close(served);
    EXPECT_FALSE(connected_in(diag->get())) << "both ends reset: nothing left";
  }
}

TEST_F(CriuNetns, AnotherNamespacesConnectionsAreNotCounted) {
  Space s = Space::make();
  Space other = Space::make();
  sockaddr_storage ss{};
  socklen_t len = 0;
  UniqueFd l = listen_in(other, "127.0.0.1", 7002, ss, len);
  UniqueFd client = socket_in(other.ns, AF_INET, SOCK_STREAM);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr *>(&ss), len), 0) << std::strerror(errno);
  auto mine = migration::socket_in_netns(s.ns.fd(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  auto theirs =
      migration::socket_in_netns(other.ns.fd(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  ASSERT_TRUE(mine && theirs);
  EXPECT_FALSE(connected_in(mine->get()));
  EXPECT_TRUE(connected_in(theirs->get()));
}

TEST_F(CriuNetns, SocketInNetnsLeavesTheCallerWhereItWas) {
  Space s = Space::make();
  ino_t before = netns_inode("/proc/thread-self/ns/net");
  auto sock = migration::socket_in_netns(s.ns.fd(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  ASSERT_TRUE(sock) << sock.error().text();
  EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), before);
  auto bad = migration::socket_in_netns(-1, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EBADF);
  EXPECT_NE(bad.error().text().find("entering the network namespace"), std::string::npos)
      << bad.error().text();
}

TEST_F(CriuNetns, EnteredUntilDestroyedThenBackHome) {
  Space s = Space::make();
  ino_t home = netns_inode("/proc/thread-self/ns/net");
  ino_t target = fd_inode(s.ns.fd());
  ASSERT_NE(home, target);
  {
    auto in = migration::NetnsEntered::enter(s.ns.fd());
    ASSERT_TRUE(in) << in.error().text();
    EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), target);
    // A child started meanwhile is born there.
    pid_t child = ::fork();
    if (child == 0) {
      ::pause();
      ::_exit(0);
    }
    ASSERT_GT(child, 0);
    EXPECT_EQ(netns_inode(fmt::format("/proc/{}/ns/net", child)), target);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), home);
  auto bad = migration::NetnsEntered::enter(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), home);
}

TEST_F(CriuNetns, CriuServiceStartsInTheNamespaceGiven) {
  if (!migration::find_criu())
    GTEST_SKIP() << "criu is not installed";
  Space s = Space::make();
  ino_t home = netns_inode("/proc/thread-self/ns/net");
  auto service = migration::CriuService::start(s.ns.fd());
  ASSERT_TRUE(service) << service.error().text();
  EXPECT_EQ(netns_inode(fmt::format("/proc/{}/ns/net", service->pid())), fd_inode(s.ns.fd()));
  EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), home);
  auto plain = migration::CriuService::start();
  ASSERT_TRUE(plain) << plain.error().text();
  EXPECT_EQ(netns_inode(fmt::format("/proc/{}/ns/net", plain->pid())), home);
}
