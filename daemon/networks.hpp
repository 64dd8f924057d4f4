// bulkheadd's managed networks (docs/api.md "Networks", docs/network.md "Daemon integration"): a
// Linux bridge "bh-NAME" in the daemon's network namespace with the host-side addresses, an IPAM
// record per family, and a durable record <root>/networks/NAME.json. Creation is idempotent on
// the kernel side (ensure_*), so a restarted daemon re-adopts its bridges without disturbing them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "network/ip.hpp"

namespace bulkhead::daemon {

struct NetworkRecord {
  std::string name;
  std::string type = "bridge"; // "bridge" or "routed" (daemon/routed_network.hpp)
  std::string bridge;          // "bh-" + name; empty for a routed network
  // routed: the host link that answers ARP/NDP for the containers; bridge with nat: masquerade
  // only what leaves through it (empty: anything that leaves but the bridge)
  std::string uplink;
  std::optional<net::Cidr> ipv4; // the bridge's address in its subnet; routed: the containers' subnet
  std::optional<net::Cidr> ipv6;
  std::vector<net::IpAddress> dns; // nameservers for containers; empty: the bridge's addresses
  unsigned mtu = 0;                // the bridge's MTU when it was made
  bool nat = false;                // IPv4 masquerading (daemon/nat.hpp)
  int64_t created_unix = 0;
};

// One port forward of a running container on the network (daemon/port_forwards.hpp).
struct DnatRule {
  uint16_t host_port = 0;
  std::string proto;   // "tcp" or "udp"
  std::string address; // the container's IPv4 on the network
  uint16_t container_port = 0;
};

nlohmann::json to_json(const NetworkRecord &n);
Result<NetworkRecord> network_from_json(const nlohmann::json &j);

class Networks {
public:
  explicit Networks(std::string root) : dir_(std::move(root) + "/networks") {}

  // Loads the records and re-adopts (or re-creates) each bridge and its addresses; a network that
  // cannot be brought back is reported on stderr and kept (its record is the truth).
  Status init();

  nlohmann::json list() const;
  Result<nlohmann::json> info(const std::string &name) const;
  Result<NetworkRecord> get(const std::string &name) const;
  // {"name","type":"bridge","ipv4"?,"ipv6"?}: EEXIST when it exists, EINVAL on bad input or a
  // subnet overlapping another network's. Nothing is left behind on failure.
  Result<nlohmann::json> create(const nlohmann::json &request);
  // users(name): the containers using the network; EBUSY when there is any.
  Status remove(const std::string &name,
                const std::function<std::vector<std::string>(const std::string &)> &users);

  // The port forwards of the running containers on a network, which its NAT table carries
  // (daemon/port_forwards.hpp). Set by the Daemon before init(); called with mu_ held, so it
  // takes no lock but its own.
  void set_forwards(std::function<std::vector<DnatRule>(const std::string &)> forwards) {
    forwards_ = std::move(forwards);
  }

  // The IPAM record of a network for a family (AF_INET / AF_INET6).
  std::string ipam_path(const std::string &name, int family) const;

private:
  Status bring_up(const NetworkRecord &n, bool *created_bridge);
  std::string record_path(const std::string &name) const { return dir_ + "/" + name + ".json"; }

  std::string dir_;
  mutable std::mutex mu_;
  std::map<std::string, NetworkRecord> nets_;
  std::function<std::vector<DnatRule>(const std::string &)> forwards_;
};

} // namespace bulkhead::daemon
