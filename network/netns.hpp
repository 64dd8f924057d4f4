// Network namespace handles, and running a short piece of code inside one.
//
// Choice (docs/network.md): the calling thread never changes namespace. Whatever must be *created*
// inside another netns (a netlink socket, a TCP socket for a test, a /proc/sys file write) runs on a
// short-lived std::thread that setns()es, does its job and exits; a netlink socket keeps the netns it
// was created in for its whole life, so after that every request is sent from the caller's thread.
// setns(CLONE_NEWNET) is per-thread and allowed in a multithreaded process, so the rest of the
// daemon is never disturbed.
#pragma once

#include <sched.h>
#include <string>
#include <thread>
#include <utility>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::net {

class Netns {
public:
  // The empty handle: the netns of the calling thread (no setns at all).
  Netns() = default;

  static Result<Netns> open(const std::string &path); // /proc/PID/ns/net, a bind mount under /run/netns
  static Result<Netns> of_pidfd(int pidfd);           // the netns a process (pidfd) is in
  static Result<Netns> current();                     // an fd to the calling thread's netns
  static Result<Netns> create();                      // a new empty netns, alive while a handle is
  Result<Netns> dup() const;

  bool is_caller() const { return !fd_.valid(); }
  int fd() const { return fd_.get(); }

private:
  explicit Netns(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Runs fn() (returning Result<T>) on a fresh thread that first joins ns; in the caller's thread when
// ns is the empty handle.
template <class F> auto run_in(const Netns &ns, F &&fn) -> decltype(fn()) {
  if (ns.is_caller())
    return fn();
  decltype(fn()) out = fail("netns thread did not run");
  std::thread t([&] {
    if (::setns(ns.fd(), CLONE_NEWNET) < 0) {
      out = failf_errno("entering network namespace (fd {})", ns.fd());
      return;
    }
    out = fn();
  });
  t.join();
  return out;
}

} // namespace bulkhead::net
