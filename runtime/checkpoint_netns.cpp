#include "runtime/checkpoint_netns.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "bulkhead/io.hpp"
#include "migration/criu_netns.hpp"

namespace bulkhead::runtime {

namespace {

// A file CRIU does not know, so it never touches it; bulkhead's restore reads it.
constexpr const char *kCriuInTreeNetns = "bulkhead-criu-in-tree-netns";

} // namespace

std::optional<IdleNetns> idle_network_namespace(pid_t pid,
                                                const std::function<void(const std::string &)> &why_not) {
  IdleNetns n;
  n.pid = pid;
  std::string path = fmt::format("/proc/{}/ns/net", pid);
  n.netns.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!n.netns) {
    why_not(fmt::format("opening {}: {}", path, std::strerror(errno)));
    return std::nullopt;
  }
  auto diag =
      migration::socket_in_netns(n.netns.get(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (!diag) {
    why_not(diag.error().text());
    return std::nullopt;
  }
  n.diag = std::move(*diag);
  auto connected = migration::has_tcp_connections(n.diag.get());
  if (!connected || *connected) {
    why_not(connected ? "it has TCP connections" : connected.error().text());
    return std::nullopt;
  }
  return n;
}

bool still_idle(const IdleNetns &n, pid_t pid, const std::function<void(const std::string &)> &why_not) {
  if (pid != n.pid) {
    why_not(fmt::format("its init is {} now, not {}", pid, n.pid));
    return false;
  }
  auto connected = migration::has_tcp_connections(n.diag.get());
  if (!connected || *connected) {
    why_not(connected ? "a TCP connection appeared before the freeze" : connected.error().text());
    return false;
  }
  return true;
}

Status mark_criu_netns(const std::string &images, bool in_tree_netns) {
  std::string path = images + "/" + kCriuInTreeNetns;
  if (in_tree_netns)
    return write_file_atomic(
        path, "CRIU ran in the tree's network namespace: restore starts it in the tree's new one\n", 0600);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT)
    return failf_errno("removing {}", path);
  return {};
}

bool criu_ran_in_tree_netns(const std::string &images) {
  return ::access((images + "/" + kCriuInTreeNetns).c_str(), F_OK) == 0;
}

} // namespace bulkhead::runtime
