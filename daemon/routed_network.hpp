// Routed networks (OpenVZ venet, Incus routed NICs): no bridge; containers get /32 and /128
// addresses from the network's subnets behind a veth each, the host routes to them and answers
// ARP/NDP for them on a named uplink (docs/network.md "Routed networks").
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/networks.hpp"

namespace bulkhead::daemon {

// The link-local gateway every routed container uses, on the host end of its veth.
inline constexpr const char *kRoutedGateway4 = "169.254.0.1";
inline constexpr const char *kRoutedGateway6 = "fe80::1";

// Fills n.type, n.uplink from {"type":"routed","uplink":IFACE}; EINVAL naming the problem.
Status parse_routed_request(const nlohmann::json &req, NetworkRecord &n);
// A routed network's subnet: "198.18.30.64/26" (host bits allowed; the address given is never
// handed out, nor is the network or IPv4 broadcast address).
Result<net::Cidr> parse_routed_subnet(const nlohmann::json &req, const char *key, int family);
// The uplink must exist; forwarding on, proxy_arp / proxy_ndp on the uplink, IPAM records opened.
// Nothing is created, so a failure leaves nothing (the sysctls are settings, left on).
Status bring_up_routed(const NetworkRecord &n,
                       const std::function<std::string(const std::string &, int)> &ipam_path);

} // namespace bulkhead::daemon
