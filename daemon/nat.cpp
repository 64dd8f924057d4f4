#include "daemon/nat.hpp"

#include <fmt/format.h>

#include "network/nftables.hpp"
#include "network/sysctl.hpp"

namespace bulkhead::daemon {

std::string nat_table_name(const std::string &network) {
  std::string t = "bulkhead_" + network;
  for (auto &c : t)
    if (c == '-')
      c = '_';
  return t;
}

Status check_uplink_name(const std::string &uplink) {
  if (uplink.empty() || uplink.size() > 15 || uplink == "." || uplink == "..")
    return fail(fmt::format("uplink '{}': an interface name of 1 to 15 characters", uplink), EINVAL);
  for (char c : uplink)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_'))
      return fail(fmt::format("uplink '{}': only A-Z, a-z, 0-9, '.', '-' and '_'", uplink), EINVAL);
  return {};
}

std::string nat_ruleset(const NetworkRecord &n) {
  std::string subnet = fmt::format("{}/{}", n.ipv4->network().str(), n.ipv4->prefix);
  // Traffic from the subnet to the subnet stays on the bridge (not NATed); with an uplink only
  // what leaves through it is masqueraded, without one anything not going back out the bridge.
  std::string out =
      n.uplink.empty() ? fmt::format("oifname != \"{}\"", n.bridge) : fmt::format("oifname \"{}\"", n.uplink);
  return fmt::format("table ip {0} {{\n"
                     "  chain postrouting {{\n"
                     "    type nat hook postrouting priority srcnat; policy accept;\n"
                     "    ip saddr {1} ip daddr != {1} {2} masquerade\n"
                     "  }}\n"
                     "}}\n",
                     nat_table_name(n.name), subnet, out);
}

Status apply_nat(const NetworkRecord &n) {
  if (!n.nat || !n.ipv4)
    return fail(fmt::format("network {}: NAT needs an IPv4 subnet", n.name), EINVAL);
  auto self = net::Netns::current();
  if (!self)
    return tl::unexpected(self.error());
  BH_CHECK(net::set_forwarding(*self, AF_INET, true));
  std::string t = nat_table_name(n.name);
  // add (no-op if present) + delete + create: one transaction, so the replacement is atomic.
  return net::nft_run(fmt::format("add table ip {0}\ndelete table ip {0}\n{1}", t, nat_ruleset(n)));
}

Status remove_nat(const std::string &network) { return net::nft_delete_table("ip", nat_table_name(network)); }

} // namespace bulkhead::daemon
