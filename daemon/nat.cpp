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

std::string nat_ruleset(const NetworkRecord &n, const std::vector<DnatRule> &forwards) {
  std::string subnet = fmt::format("{}/{}", n.ipv4->network().str(), n.ipv4->prefix);
  // Traffic from the subnet to the subnet stays on the bridge (not NATed); with an uplink only
  // what leaves through it is masqueraded, without one anything not going back out the bridge.
  std::string out =
      n.uplink.empty() ? fmt::format("oifname != \"{}\"", n.bridge) : fmt::format("oifname \"{}\"", n.uplink);
  std::string text = fmt::format("table ip {} {{\n", nat_table_name(n.name));
  if (!forwards.empty()) {
    // Only what is addressed to the host itself (fib ... type local) is forwarded: a container's
    // connection through the host to port 80 elsewhere is not a forward. From outside means
    // through the uplink, or without one through any interface but this network's bridge: the
    // containers on the bridge reach each other by their own addresses (a hairpin would need a
    // masquerade of their own traffic).
    std::string in = n.uplink.empty() ? fmt::format("iifname != \"{}\"", n.bridge)
                                      : fmt::format("iifname \"{}\"", n.uplink);
    std::string pre, local;
    for (const auto &f : forwards) {
      std::string match =
          fmt::format("{} dport {} dnat to {}:{}", f.proto, f.host_port, f.address, f.container_port);
      pre += fmt::format("    {} fib daddr type local {}\n", in, match);
      // The host's own connections (to its uplink or bridge address). Loopback is left alone:
      // 127.0.0.0/8 cannot be routed out to a container without route_localnet.
      local += fmt::format("    ip daddr != 127.0.0.0/8 fib daddr type local {}\n", match);
    }
    text += fmt::format("  chain prerouting {{\n"
                        "    type nat hook prerouting priority dstnat; policy accept;\n"
                        "{}"
                        "  }}\n"
                        "  chain output {{\n"
                        "    type nat hook output priority -100; policy accept;\n"
                        "{}"
                        "  }}\n",
                        pre, local);
  }
  text += fmt::format("  chain postrouting {{\n"
                      "    type nat hook postrouting priority srcnat; policy accept;\n"
                      "    ip saddr {0} ip daddr != {0} {1} masquerade\n"
                      "  }}\n"
                      "}}\n",
                      subnet, out);
  return text;
}

Status apply_nat(const NetworkRecord &n, const std::vector<DnatRule> &forwards) {
  if (!n.nat || !n.ipv4)
    return fail(fmt::format("network {}: NAT needs an IPv4 subnet", n.name), EINVAL);
  auto self = net::Netns::current();
  if (!self)
    return tl::unexpected(self.error());
  BH_CHECK(net::set_forwarding(*self, AF_INET, true));
  std::string t = nat_table_name(n.name);
  // add (no-op if present) + delete + create: one transaction, so the replacement is atomic.
  return net::nft_run(fmt::format("add table ip {0}\ndelete table ip {0}\n{1}", t, nat_ruleset(n, forwards)));
}

Status remove_nat(const std::string &network) { return net::nft_delete_table("ip", nat_table_name(network)); }

} // namespace bulkhead::daemon
