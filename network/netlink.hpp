// One rtnetlink socket bound to the netns it was opened in: request/ack with sequence numbers and
// NLM_F_ACK, dumps, and errors that carry the kernel's extended-ack text when it sends one.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "bulkhead/result.hpp"
#include "network/netns.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace bulkhead::net {

class Netlink {
public:
  // A NETLINK_ROUTE socket in ns (the caller's netns for the empty handle).
  static Result<Netlink> open(const Netns &ns = {});

  Netlink(Netlink &&o) noexcept;
  Netlink &operator=(Netlink &&o) noexcept;
  Netlink(const Netlink &) = delete;
  Netlink &operator=(const Netlink &) = delete;
  ~Netlink();

  // Sends msg with NLM_F_REQUEST | NLM_F_ACK and the next sequence number, waits for the ack.
  // Failure: "<what>: <extack text>" with the kernel's errno.
  Status request(nlmsghdr *msg, std::string_view what);
  // Sends a get or dump request (NLM_F_REQUEST, caller adds NLM_F_DUMP) and calls each() for every
  // reply message until the answer is complete.
  Status query(nlmsghdr *msg, const std::function<Status(const nlmsghdr *)> &each, std::string_view what);

private:
  Netlink(mnl_socket *sock, unsigned portid) : sock_(sock), portid_(portid) {}
  Status exchange(nlmsghdr *msg, const std::function<Status(const nlmsghdr *)> *each, std::string_view what);

  mnl_socket *sock_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
};

} // namespace bulkhead::net
