#include "migration/criu_netns.hpp"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace bulkhead::migration {

Result<UniqueFd> socket_in_netns(int netns, int domain, int type, int protocol) {
  Result<UniqueFd> out = fail("the network namespace's thread did not run");
  std::thread t([&] {
    if (::setns(netns, CLONE_NEWNET) < 0) {
      out = failf_errno("entering the network namespace (fd {})", netns);
      return;
    }
    UniqueFd sock(::socket(domain, type, protocol));
    if (!sock) {
      out = failf_errno("socket({}, {}, {}) in the network namespace (fd {})", domain, type, protocol, netns);
      return;
    }
    out = std::move(sock);
  });
  t.join();
  return out;
}

Result<NetnsEntered> NetnsEntered::enter(int netns) {
  UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home)
    return fail_errno("opening /proc/thread-self/ns/net (this thread's network namespace)");
  if (::setns(netns, CLONE_NEWNET) < 0)
    return failf_errno("entering the network namespace (fd {})", netns);
  return NetnsEntered(std::move(home));
}

NetnsEntered::~NetnsEntered() {
  if (!home_)
    return; // moved from
  if (::setns(home_.get(), CLONE_NEWNET) < 0) {
    std::fprintf(stderr, "bulkhead: cannot return to this process's network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
}

namespace {

constexpr uint32_t state_bit(int s) { return 1u << s; }

// Every TCP state a connection is in from connect() or accept's handshake to its last FIN; not
// LISTEN, CLOSE (a socket never connected), TIME_WAIT and the request sockets of a handshake in
// progress (no file holds them: CRIU never sees them).
constexpr uint32_t kConnectedStates =
    state_bit(TCP_ESTABLISHED) | state_bit(TCP_SYN_SENT) | state_bit(TCP_FIN_WAIT1) |
    state_bit(TCP_FIN_WAIT2) | state_bit(TCP_CLOSE_WAIT) | state_bit(TCP_LAST_ACK) | state_bit(TCP_CLOSING);

// One family's dump, read to its end (the socket is used again); true when it named a socket.
Result<bool> family_has_connections(int diag, uint8_t family, uint32_t seq) {
  struct {
    nlmsghdr h;
    inet_diag_req_v2 r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq;
  req.r.sdiag_family = family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = kConnectedStates;
  const char *name = family == AF_INET ? "IPv4" : "IPv6";
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(diag, &req, sizeof req, 0, reinterpret_cast<sockaddr *>(&kernel), sizeof kernel) !=
      static_cast<ssize_t>(sizeof req))
    return failf_errno("asking sock_diag for the {} TCP connections", name);
  bool found = false;
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = ::recv(diag, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("reading sock_diag's {} TCP connections", name);
    }
    int left = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq)
        continue;
      if (h->nlmsg_type == NLMSG_DONE)
        return found;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto *e = static_cast<const nlmsgerr *>(NLMSG_DATA(h));
        // A kernel without IPv6 has no such sockets to report.
        if (family == AF_INET6 && e->error == -ENOENT)
          return false;
        return fail(fmt::format("sock_diag's {} TCP connections", name), -e->error);
      }
      if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
        found = true;
    }
  }
}

} // namespace

Result<bool> has_tcp_connections(int diag) {
  timeval timeout{5, 0}; // the kernel answers at once; never hang a checkpoint on it
  ::setsockopt(diag, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  bool v4 = BH_TRY(family_has_connections(diag, AF_INET, 1));
  bool v6 = BH_TRY(family_has_connections(diag, AF_INET6, 2));
  return v4 || v6;
}

} // namespace bulkhead::migration
