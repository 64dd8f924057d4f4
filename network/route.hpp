// Routes (RTM_NEWROUTE / RTM_DELROUTE / dump) and proxy-NDP neighbour entries (RTM_NEWNEIGH with
// NTF_PROXY), what bridged and routed NICs need: default routes via a gateway, /32 and /128 host
// routes to a device, and the uplink answering neighbour solicitations for routed addresses.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "network/ip.hpp"
#include "network/netlink.hpp"

namespace bulkhead::net {

struct Route {
  Cidr dst;                         // 0.0.0.0/0 or ::/0 is the default route
  std::optional<IpAddress> gateway; // none: directly on dev
  std::string dev;                  // output device (needed without a gateway, or with onlink)
  bool onlink = false;              // RTNH_F_ONLINK: a gateway outside dev's subnets (169.254.0.1)
  uint32_t table = 254;             // RT_TABLE_MAIN
  uint8_t protocol = 4;             // RTPROT_STATIC
  uint32_t metric = 0;

  static Route default_via(const IpAddress &gw, std::string dev = {}, bool onlink = false);
  static Route host(const IpAddress &a, std::string dev); // /32 or /128 to dev
  std::string str() const;
  bool operator==(const Route &) const = default;
};

Status add_route(Netlink &nl, const Route &r);    // EEXIST when present
Status ensure_route(Netlink &nl, const Route &r); // NLM_F_REPLACE: idempotent
Status delete_route(Netlink &nl, const Route &r);
// Unicast routes of the main table; dev names are resolved back from indexes.
Result<std::vector<Route>> list_routes(Netlink &nl, int family);

// Proxy neighbour entry (ip -6 neigh add proxy ADDR dev DEV), answered when proxy_ndp is on.
Status ensure_proxy_neighbour(Netlink &nl, std::string_view dev, const IpAddress &a);
Status delete_proxy_neighbour(Netlink &nl, std::string_view dev, const IpAddress &a);

} // namespace bulkhead::net
