#include "network/sysctl.hpp"

#include <sys/socket.h>

#include "bulkhead/io.hpp"

namespace bulkhead::net {
namespace {

Result<std::string> path_of(std::string_view key) {
  if (key.empty() || key.find("..") != std::string_view::npos || key.front() == '/')
    return failf("'{}' is not a sysctl key", key);
  return "/proc/sys/" + std::string(key);
}

} // namespace

Status write_sysctl(const Netns &ns, std::string_view key, std::string_view value) {
  auto path = BH_TRY(path_of(key));
  return run_in(ns, [&]() -> Status {
    return context(write_file_at(AT_FDCWD, path, value, O_WRONLY), fmt::format("setting {}={}", key, value));
  });
}

Result<std::string> read_sysctl(const Netns &ns, std::string_view key) {
  auto path = BH_TRY(path_of(key));
  auto s = BH_TRY(run_in(ns, [&] { return read_file(path); }));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

Status set_forwarding(const Netns &ns, int family, bool on) {
  return write_sysctl(ns, family == AF_INET ? "net/ipv4/conf/all/forwarding" : "net/ipv6/conf/all/forwarding",
                      on ? "1" : "0");
}

Status set_proxy_arp(const Netns &ns, std::string_view dev, bool on) {
  return write_sysctl(ns, fmt::format("net/ipv4/conf/{}/proxy_arp", dev), on ? "1" : "0");
}

Status set_proxy_ndp(const Netns &ns, std::string_view dev, bool on) {
  return write_sysctl(ns, fmt::format("net/ipv6/conf/{}/proxy_ndp", dev), on ? "1" : "0");
}

} // namespace bulkhead::net
