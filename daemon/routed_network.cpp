#include "daemon/routed_network.hpp"

#include <fmt/core.h>

#include "network/network.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

Status parse_routed_request(const json &req, NetworkRecord &n) {
  n.type = "routed";
  if (!req.contains("uplink") || !req["uplink"].is_string() || req["uplink"].get<std::string>().empty())
    return fail(fmt::format("network {}: a routed network needs an \"uplink\" interface", n.name), EINVAL);
  n.uplink = req["uplink"].get<std::string>();
  if (n.uplink.size() > 15 || n.uplink.find_first_of("/: \t\n") != std::string::npos || n.uplink == "." ||
      n.uplink == "..")
    return fail(fmt::format("network {}: uplink '{}' is not an interface name", n.name, n.uplink), EINVAL);
  if (!req.contains("ipv4") && !req.contains("ipv6"))
    return fail(fmt::format("network {}: a routed network needs --ipv4 and/or --ipv6 subnets", n.name),
                EINVAL);
  return {};
}

Result<net::Cidr> parse_routed_subnet(const json &req, const char *key, int family) {
  if (!req[key].is_string())
    return fail(fmt::format("{}: expected a subnet string like {}", key,
                            family == AF_INET ? "198.18.30.64/26" : "fd00:30::/64"),
                EINVAL);
  auto text = req[key].get<std::string>();
  auto c = net::Cidr::parse(text);
  if (!c)
    return fail(fmt::format("{} {}: {}", key, text, c.error().message), EINVAL);
  if (c->family() != family)
    return fail(fmt::format("{} {}: not an {} subnet", key, text, family == AF_INET ? "IPv4" : "IPv6"),
                EINVAL);
  if (text.find('/') == std::string::npos || c->max_prefix() - c->prefix < 2)
    return fail(fmt::format("{} {}: give a subnet with room for containers (at most /{})", key, text,
                            c->max_prefix() - 2),
                EINVAL);
  return *c;
}

Status bring_up_routed(const NetworkRecord &n,
                       const std::function<std::string(const std::string &, int)> &ipam_path) {
  auto nl = BH_TRY(net::Netlink::open());
  auto up = net::find_link(nl, n.uplink);
  if (!up)
    return tl::unexpected(up.error());
  if (!*up)
    return fail(fmt::format("uplink {} does not exist", n.uplink), EINVAL);
  net::Netns self;
  if (n.ipv4) {
    BH_CHECK(net::set_forwarding(self, AF_INET, true));
    BH_CHECK(net::set_proxy_arp(self, n.uplink, true));
  }
  if (n.ipv6) {
    BH_CHECK(net::set_forwarding(self, AF_INET6, true));
    BH_CHECK(net::set_proxy_ndp(self, n.uplink, true));
  }
  for (const auto *c : {&n.ipv4, &n.ipv6})
    if (*c)
      BH_CHECK(net::Ipam::open(ipam_path(n.name, (*c)->family()), **c, {(*c)->addr}));
  return {};
}

} // namespace bulkhead::daemon
