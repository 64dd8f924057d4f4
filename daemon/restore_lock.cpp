#include "daemon/restore_lock.hpp"

#include <fmt/core.h>

#include "network/netns.hpp"
#include "network/nftables.hpp"

namespace bulkhead::daemon {

namespace {

constexpr const char *kTable = "bulkhead_restore_lock";

// Before every other hook (conntrack is at -200), so nothing of the packet reaches a socket.
constexpr const char *kLockRules = "table inet bulkhead_restore_lock {\n"
                                   "  chain input {\n"
                                   "    type filter hook input priority -400; policy accept;\n"
                                   "    iifname != \"lo\" drop\n"
                                   "  }\n"
                                   "}\n";

Result<net::Netns> netns_of(pid_t pid) {
  return context(net::Netns::open(fmt::format("/proc/{}/ns/net", pid)),
                 fmt::format("the network namespace of pid {}", pid));
}

} // namespace

Status lock_restore_inbound(pid_t pid) {
  auto ns = BH_TRY(netns_of(pid));
  return context(net::run_in(ns, [] { return net::nft_run(kLockRules); }),
                 fmt::format("locking the inbound traffic of pid {}'s netns for the restore", pid));
}

Status unlock_restore_inbound(pid_t pid) {
  auto ns = BH_TRY(netns_of(pid));
  return context(net::run_in(ns, [] { return net::nft_delete_table("inet", kTable); }),
                 fmt::format("unlocking the inbound traffic of pid {}'s netns after the restore", pid));
}

} // namespace bulkhead::daemon
