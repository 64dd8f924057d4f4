// Shared by the network tests: throwaway network namespaces with their own rtnetlink socket, and
// real traffic between namespaces (a UDP echo, a timed TCP transfer). Sockets are created on a
// thread inside the namespace (run_in) and keep it, so the test thread itself never moves.
#pragma once

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "network/network.hpp"

namespace bulkhead::net::test {

#define ASSERT_OK(expr)                                                                                      \
  do {                                                                                                       \
    auto ok_result_ = (expr);                                                                                \
    ASSERT_TRUE(ok_result_) << #expr << ": " << ok_result_.error().text();                                   \
  } while (0)

// The fixture of every test here: network namespaces need root; skipped without it.
class RootOnly : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root (network namespaces)";
  }
};

inline IpAddress ip(const char *s) { return *IpAddress::parse(s); }
inline Cidr cidr(const char *s) { return *Cidr::parse(s); }

// A fresh netns with lo up and IPv6 DAD off (addresses usable at once), and a Netlink inside it.
struct Space {
  Netns ns;
  Netlink nl;

  static Space make() {
    auto ns = Netns::create();
    EXPECT_TRUE(ns) << ns.error().text();
    auto nl = Netlink::open(*ns);
    EXPECT_TRUE(nl) << nl.error().text();
    Space s{std::move(*ns), std::move(*nl)};
    EXPECT_TRUE(set_up(s.nl, "lo", true));
    for (const char *k : {"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"})
      EXPECT_TRUE(write_sysctl(s.ns, k, "0"));
    return s;
  }

  std::vector<std::string> link_names() {
    std::vector<std::string> out;
    auto links = list_links(nl);
    EXPECT_TRUE(links) << links.error().text();
    if (links)
      for (const auto &l : *links)
        out.push_back(l.name);
    return out;
  }
};

inline sockaddr_storage sockaddr_of(const IpAddress &a, uint16_t port, socklen_t &len) {
  sockaddr_storage ss{};
  if (a.is_v4()) {
    auto *s = reinterpret_cast<sockaddr_in *>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto *s = reinterpret_cast<sockaddr_in6 *>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

inline UniqueFd socket_in(const Netns &ns, int family, int type) {
  auto fd = run_in(ns, [&]() -> Result<int> {
    int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return failf_errno("socket");
    return fd;
  });
  EXPECT_TRUE(fd) << fd.error().text();
  return UniqueFd(fd ? *fd : -1);
}

inline void set_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A UDP datagram from `from` to dst (bound in `to`), echoed back: proves both directions route.
inline bool udp_roundtrip(const Netns &from, const Netns &to, const IpAddress &dst, uint16_t port = 7777) {
  int family = dst.family;
  UniqueFd server = socket_in(to, family, SOCK_DGRAM);
  UniqueFd client = socket_in(from, family, SOCK_DGRAM);
  socklen_t len = 0;
  auto addr = sockaddr_of(dst, port, len);
  if (::bind(server.get(), reinterpret_cast<sockaddr *>(&addr), len) < 0) {
    ADD_FAILURE() << "bind " << dst.str() << ": " << std::strerror(errno);
    return false;
  }
  set_timeout(server.get(), 4);
  set_timeout(client.get(), 4);
  const char msg[] = "bulkhead-ping";
  if (::sendto(client.get(), msg, sizeof msg, 0, reinterpret_cast<sockaddr *>(&addr), len) < 0) {
    ADD_FAILURE() << "sendto " << dst.str() << ": " << std::strerror(errno);
    return false;
  }
  char buf[64];
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  ssize_t n = ::recvfrom(server.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&peer), &plen);
  if (n != sizeof msg)
    return false;
  if (::sendto(server.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr *>(&peer), plen) < 0)
    return false;
  n = ::recv(client.get(), buf, sizeof buf, 0);
  return n == sizeof msg && std::memcmp(buf, msg, sizeof msg) == 0;
}

// Bytes per second of TCP payload from a client in `from` to a server on dst in `to`, counted by
// the receiver over `seconds` after a 0.5 s warm-up (slow start, the TBF's initial burst).
inline double tcp_rate(const Netns &from, const Netns &to, const IpAddress &dst, double seconds = 2.0,
                       uint16_t port = 5201) {
  using clock = std::chrono::steady_clock;
  int family = dst.family;
  UniqueFd listener = socket_in(to, family, SOCK_STREAM);
  int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = 0;
  auto addr = sockaddr_of(dst, port, len);
  if (::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), len) < 0 ||
      ::listen(listener.get(), 1) < 0) {
    ADD_FAILURE() << "listen on " << dst.str() << ": " << std::strerror(errno);
    return -1;
  }
  UniqueFd client = socket_in(from, family, SOCK_STREAM);
  set_timeout(client.get(), 5);
  if (::connect(client.get(), reinterpret_cast<sockaddr *>(&addr), len) < 0) {
    ADD_FAILURE() << "connect to " << dst.str() << ": " << std::strerror(errno);
    return -1;
  }
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) {
    ADD_FAILURE() << "accept: " << std::strerror(errno);
    return -1;
  }
  set_timeout(conn.get(), 5);
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::vector<char> chunk(65536, 'x');
    while (!stop.load())
      if (::send(client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0)
        break;
  });
  std::vector<char> buf(1 << 17);
  auto start = clock::now();
  auto begin = start + std::chrono::milliseconds(500);
  auto end = begin + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t counted = 0;
  for (;;) {
    ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
    auto now = clock::now();
    if (n <= 0)
      break;
    if (now >= end)
      break;
    if (now >= begin)
      counted += static_cast<uint64_t>(n);
  }
  stop = true;
  ::shutdown(client.get(), SHUT_RDWR);
  ::shutdown(conn.get(), SHUT_RDWR);
  sender.join();
  return static_cast<double>(counted) / seconds;
}

} // namespace bulkhead::net::test
