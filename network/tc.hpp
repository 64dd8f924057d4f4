// Bandwidth caps as tc objects built over rtnetlink, per device (docs/network.md):
//  - egress (what leaves dev): a TBF root qdisc (handle 1:) on dev;
//  - ingress (what arrives on dev): an ingress qdisc (ffff:) with a match-all u32 filter whose
//    mirred action redirects every packet to an IFB device, which carries the TBF. (The police
//    action is a config option many kernels lack; the IFB path needs only u32 + mirred + ifb.)
// For a container NIC the host end of its veth gets both: the host end's egress is the container's
// download, its ingress the container's upload. set_* replace in place, so rates change live.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "network/netlink.hpp"

namespace bulkhead::net {

struct Rate {
  uint64_t bits_per_second = 0;
  // tc's units: "10mbit", "500kbit", "1gbit", "2mibit", "1mbps" (bytes), a bare number is bit/s.
  static Result<Rate> parse(std::string_view text);
  uint64_t bytes_per_second() const { return bits_per_second / 8; }
  std::string str() const;
};

struct ShapeOptions {
  uint32_t burst_bytes = 0; // 0: 10 ms at the rate, at least 16 KiB
  uint32_t latency_ms = 50; // queue length, as time at the rate
};

Status set_egress_limit(Netlink &nl, std::string_view dev, Rate rate, const ShapeOptions &opts = {});
Status clear_egress_limit(Netlink &nl, std::string_view dev); // absent is success
// The rate of dev's root TBF, none when dev has no cap: what a restarted daemon reads back.
Result<std::optional<Rate>> egress_limit(Netlink &nl, std::string_view dev);

// The IFB is named ifb_name(dev's index) and lives in the same netns as dev.
Status set_ingress_limit(Netlink &nl, std::string_view dev, Rate rate, const ShapeOptions &opts = {});
Status clear_ingress_limit(Netlink &nl, std::string_view dev); // absent is success
Result<std::optional<Rate>> ingress_limit(Netlink &nl, std::string_view dev);
std::string ifb_name(int dev_index);

} // namespace bulkhead::net
