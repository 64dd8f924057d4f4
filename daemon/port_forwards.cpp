#include "daemon/port_forwards.hpp"

#include <fmt/format.h>

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

std::string address_of(const ContainerConfig &config, const std::string &network) {
  for (const auto &nic : config.nets)
    if (nic.network == network && !nic.ipv4.empty())
      return nic.ipv4.substr(0, nic.ipv4.find('/'));
  return {};
}

Result<uint16_t> port_field(const json &req, const char *key) {
  if (!req.contains(key))
    return fail(fmt::format("a port forward needs \"{}\"", key), EINVAL);
  const auto &v = req[key];
  if (v.is_number_unsigned() && v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= 65535)
    return static_cast<uint16_t>(v.get<uint64_t>());
  if (v.is_number_integer() || v.is_number_unsigned())
    return fail(fmt::format("{} {}: a port is a number from 1 to 65535", key, v.dump()), EINVAL);
  return fail(fmt::format("{} {}: a port is a number from 1 to 65535, not {}", key, v.dump(), v.type_name()),
              EINVAL);
}

} // namespace

Status check_proto(const std::string &proto) {
  if (proto != "tcp" && proto != "udp")
    return fail(fmt::format("protocol '{}': tcp or udp", proto), EINVAL);
  return {};
}

Result<uint16_t> parse_port(const std::string &text, const std::string &what) {
  bool digits =
      !text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
  unsigned long v = digits ? std::stoul(text) : 0;
  if (!digits || v < 1 || v > 65535)
    return fail(fmt::format("{} '{}': a port is a number from 1 to 65535", what, text), EINVAL);
  return static_cast<uint16_t>(v);
}

Result<PortForward> port_forward_from_json(const json &req) {
  if (!req.is_object())
    return fail("a port forward is a JSON object {\"host_port\", \"container_port\", \"proto\"?}", EINVAL);
  for (auto it = req.begin(); it != req.end(); ++it)
    if (it.key() != "host_port" && it.key() != "container_port" && it.key() != "proto")
      return fail(fmt::format("unknown field in a port forward: {}", it.key()), EINVAL);
  PortForward f;
  f.host_port = BH_TRY(port_field(req, "host_port"));
  f.container_port = BH_TRY(port_field(req, "container_port"));
  if (req.contains("proto")) {
    if (!req["proto"].is_string())
      return fail(fmt::format("proto {}: tcp or udp", req["proto"].dump()), EINVAL);
    f.proto = req["proto"].get<std::string>();
  }
  BH_CHECK(check_proto(f.proto));
  return f;
}

Result<const NicConfig *> port_target(const Networks &networks, const ContainerConfig &config) {
  for (const auto &nic : config.nets) {
    auto net = networks.get(nic.network);
    if (net && net->type == "bridge" && net->nat && !nic.ipv4.empty())
      return &nic;
  }
  return fail(fmt::format("container {} has no NIC on a NATed network with an IPv4 address (port forwards "
                          "go to one: create it with --net NETWORK, NETWORK made with --ipv4 and --nat)",
                          config.name),
              EINVAL);
}

Status PortTable::claim(const Claim &c) {
  std::lock_guard lock(mu_);
  auto key = std::pair{c.forward.host_port, c.forward.proto};
  if (auto it = claims_.find(key); it != claims_.end())
    return fail(fmt::format("host port {}/{} is already forwarded to container {} (port {})", key.first,
                            key.second, it->second.container, it->second.forward.container_port),
                EEXIST);
  claims_[key] = c;
  return {};
}

void PortTable::release(uint16_t host_port, const std::string &proto) {
  std::lock_guard lock(mu_);
  claims_.erase({host_port, proto});
}

void PortTable::release_container(const std::string &container) {
  std::lock_guard lock(mu_);
  std::erase_if(claims_, [&](const auto &kv) { return kv.second.container == container; });
  active_.erase(container);
}

void PortTable::load(const ContainerConfig &config) {
  for (const auto &f : config.ports)
    if (auto r = claim({config.name, f, address_of(config, f.network)}); !r)
      fmt::print(stderr, "bulkheadd: warning: {}: not forwarding: {}\n", config.name, r.error().text());
}

void PortTable::set_active(const std::string &container, bool active) {
  std::lock_guard lock(mu_);
  if (active)
    active_.insert(container);
  else
    active_.erase(container);
}

bool PortTable::active(const std::string &container) const {
  std::lock_guard lock(mu_);
  return active_.count(container) > 0;
}

std::vector<PortTable::Claim> PortTable::list(const std::string &container) const {
  std::lock_guard lock(mu_);
  std::vector<Claim> out;
  for (const auto &[key, c] : claims_)
    if (container.empty() || c.container == container)
      out.push_back(c);
  return out;
}

std::vector<DnatRule> PortTable::rules(const std::string &network) const {
  std::lock_guard lock(mu_);
  std::vector<DnatRule> out;
  for (const auto &[key, c] : claims_)
    if (c.forward.network == network && active_.count(c.container) && !c.address.empty())
      out.push_back({c.forward.host_port, c.forward.proto, c.address, c.forward.container_port});
  return out;
}

json to_json(const PortTable::Claim &c, bool active) {
  return {{"container", c.container},
          {"host_port", c.forward.host_port},
          {"container_port", c.forward.container_port},
          {"proto", c.forward.proto},
          {"network", c.forward.network},
          {"address", c.address},
          {"active", active}};
}

} // namespace bulkhead::daemon
