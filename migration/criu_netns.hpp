// CRIU run inside a tree's own network namespace, so that it neither dumps nor locks that namespace.
//
// CRIU takes a tree's network namespace into the images, and locks it (a firewall table that drops
// every packet, in the freeze), only when it differs from CRIU's own. CRIU 3.17 has no option to skip
// that lock: an external namespace (bulkheadd's, which it owns and hands back at restore) is locked
// too, 50-290 ms of each replication pause under the test VM's TCG (seven nftables commands). A dump
// that leaves the tree running gains nothing from the lock when the tree has no TCP connection: no
// connection's state is saved, and the tree goes on right after. So for such a dump bulkhead starts
// CRIU inside the tree's namespace (runtime/checkpoint.cpp decides; docs/checkpoint.md), and the
// restore of those images starts CRIU inside the namespace the tree is to come back in.
#pragma once

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::migration {

// A socket in the network namespace `netns` (an fd). Made by a short thread that enters it, so the
// caller's own namespace never changes (the caller may be multithreaded); the socket keeps that
// namespace for its whole life.
Result<UniqueFd> socket_in_netns(int netns, int domain, int type, int protocol);

// The calling thread in the network namespace `netns` until this is destroyed, then back in the one
// it was in: a process started meanwhile (CRIU) inherits the namespace. For single-threaded callers
// (the CLI, a monitor and its workers): they start CRIU from the thread that entered. Failing to go
// back aborts the process, which must never go on in a tenant's namespace.
class NetnsEntered {
public:
  static Result<NetnsEntered> enter(int netns);
  NetnsEntered(NetnsEntered &&) noexcept = default;
  NetnsEntered &operator=(NetnsEntered &&) = delete;
  NetnsEntered(const NetnsEntered &) = delete;
  ~NetnsEntered();

private:
  explicit NetnsEntered(UniqueFd home) : home_(std::move(home)) {}
  UniqueFd home_;
};

// Whether the namespace of `diag` (a NETLINK_SOCK_DIAG socket: socket_in_netns) holds a TCP socket
// in a connected state, IPv4 or IPv6: established, connecting or closing (SYN_SENT, FIN_WAIT*,
// CLOSE_WAIT, LAST_ACK, CLOSING), including connections still in a listener's queue. Those are
// what CRIU saves only with --tcp-established and what its lock protects; listening sockets are
// not counted.
Result<bool> has_tcp_connections(int diag);

} // namespace bulkhead::migration
