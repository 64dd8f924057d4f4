// Network sysctls through /proc/sys of a given netns: /proc/sys/net resolves to the netns of the
// thread that opens it, so the file is opened and written on a thread inside ns (netns.hpp).
#pragma once

#include <string>
#include <string_view>

#include "network/netns.hpp"

namespace bulkhead::net {

// key is the path under /proc/sys: "net/ipv4/conf/eth0/proxy_arp".
Status write_sysctl(const Netns &ns, std::string_view key, std::string_view value);
Result<std::string> read_sysctl(const Netns &ns, std::string_view key); // trailing newline dropped

// What routed mode needs (family AF_INET or AF_INET6; dev "all" or "default" for the defaults).
Status set_forwarding(const Netns &ns, int family, bool on);
Status set_proxy_arp(const Netns &ns, std::string_view dev, bool on);
Status set_proxy_ndp(const Netns &ns, std::string_view dev, bool on);

} // namespace bulkhead::net
