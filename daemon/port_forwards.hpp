// Host port forwards of hosted containers (`bulkheadctl port add`, docs/network.md "Port
// forwards"): the host-wide index of who holds which (host port, proto), and which containers run
// (a forward's DNAT rule exists only then). The forwards themselves live in the containers'
// records (ContainerConfig::ports); this index is rebuilt from them at daemon start.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "daemon/networks.hpp"

namespace bulkhead::daemon {

// The API's {"host_port", "container_port", "proto"?} (proto defaults to "tcp"); errors name the
// field and value. The network is left empty (port_target chooses it).
Result<PortForward> port_forward_from_json(const nlohmann::json &request);
// A port number in an API path or body: 1 to 65535.
Result<uint16_t> parse_port(const std::string &text, const std::string &what);
// "tcp" or "udp".
Status check_proto(const std::string &proto);

// The NIC a container's forwards go to: its first NIC on a NATed bridge network with an IPv4
// address. EINVAL, naming the container, when it has none.
Result<const NicConfig *> port_target(const Networks &networks, const ContainerConfig &config);

class PortTable {
public:
  struct Claim {
    std::string container;
    PortForward forward;
    std::string address; // the container's IPv4 on forward.network (no prefix)
  };

  // Takes (host_port, proto) for the container; EEXIST naming the holder when it is taken.
  Status claim(const Claim &c);
  void release(uint16_t host_port, const std::string &proto);
  void release_container(const std::string &container);
  // Adds every forward of a record (daemon start); a clash between two records is reported and
  // the later one skipped.
  void load(const ContainerConfig &config);

  // Whether the container's forwards are in the NAT tables (it runs).
  void set_active(const std::string &container, bool active);
  bool active(const std::string &container) const;

  // The forwards of one container (all containers when empty), ordered by (port, proto).
  std::vector<Claim> list(const std::string &container = {}) const;
  // The DNAT rules of the running containers' forwards on a network.
  std::vector<DnatRule> rules(const std::string &network) const;

private:
  mutable std::mutex mu_;
  std::map<std::pair<uint16_t, std::string>, Claim> claims_;
  std::set<std::string> active_;
};

// The API's Port object: {"container", "host_port", "container_port", "proto", "network",
// "address", "active"}.
nlohmann::json to_json(const PortTable::Claim &c, bool active);

} // namespace bulkhead::daemon
