#include "network/netns.hpp"

#include <fcntl.h>
#include <sched.h>

namespace bulkhead::net {

Result<Netns> Netns::open(const std::string &path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening network namespace {}", path);
  return Netns(std::move(fd));
}

Result<Netns> Netns::current() { return open("/proc/thread-self/ns/net"); }

Result<Netns> Netns::of_pidfd(int pidfd) {
  // IFLA_NET_NS_FD wants an nsfs fd, not a pidfd: join the process's netns on a helper thread
  // (setns accepts a pidfd since 5.8) and open that thread's ns file.
  Result<Netns> out = fail("netns thread did not run");
  std::thread t([&] {
    if (::setns(pidfd, CLONE_NEWNET) < 0) {
      out = failf_errno("entering the network namespace of pidfd {}", pidfd);
      return;
    }
    out = current();
  });
  t.join();
  return out;
}

Result<Netns> Netns::create() {
  Result<Netns> out = fail("netns thread did not run");
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) < 0) {
      out = failf_errno("creating a network namespace");
      return;
    }
    out = current();
  });
  t.join();
  return out;
}

Result<Netns> Netns::dup() const {
  if (is_caller())
    return Netns();
  UniqueFd fd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!fd)
    return failf_errno("duplicating network namespace fd {}", fd_.get());
  return Netns(std::move(fd));
}

} // namespace bulkhead::net
