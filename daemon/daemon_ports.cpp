// The Daemon's side of port forwards (docs/network.md "Port forwards"): the forwards are kept in
// the container's record, indexed host-wide in ports_, and turned into DNAT rules of the network's
// NAT table while the container runs. Every change rebuilds that one table atomically (nat.hpp).
#include <fmt/format.h>

#include "bulkhead/revert.hpp"
#include "daemon/daemon.hpp"
#include "daemon/nat.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

Status Daemon::refresh_nat(const std::string &network) {
  // One rebuild at a time: two threads computing the rules and applying them in the other order
  // would leave the older set in the kernel.
  std::lock_guard lock(nat_mu_);
  auto n = networks_.get(network);
  if (!n || !n->nat || !n->ipv4)
    return {}; // no table to carry forwards (port add refuses such networks)
  if (auto r = apply_nat(*n, ports_.rules(network)); !r)
    return fail(fmt::format("network {}: updating its port forwards: {}", network, r.error().message),
                r.error().code);
  return {};
}

Status Daemon::activate_ports_locked(Entry &e, bool active) {
  // The flag follows every container (a forward added later to a running one applies at once).
  const auto &c = e.rec.config;
  if (ports_.active(c.name) == active)
    return {};
  ports_.set_active(c.name, active);
  std::set<std::string> nets;
  for (const auto &f : c.ports)
    nets.insert(f.network);
  Status result;
  for (const auto &n : nets)
    if (auto r = refresh_nat(n); !r && result)
      result = r;
  return result;
}

Result<json> Daemon::ports(const std::string &name) {
  if (!name.empty()) {
    auto e = BH_TRY(get(name)); // ENOENT for an unknown container
    (void)e;
  }
  json out = json::array();
  for (const auto &c : ports_.list(name))
    out.push_back(to_json(c, ports_.active(c.container)));
  return out;
}

Result<json> Daemon::add_port(const std::string &name, const json &request) {
  auto f = BH_TRY(port_forward_from_json(request));
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  auto &c = e->rec.config;
  const NicConfig *nic = BH_TRY(port_target(networks_, c));
  f.network = nic->network;
  PortTable::Claim claim{name, f, nic->ipv4.substr(0, nic->ipv4.find('/'))};
  BH_CHECK(ports_.claim(claim));
  Revert undo;
  undo.add([&] {
    ports_.release(f.host_port, f.proto);
    c.ports.pop_back();
    if (ports_.active(name))
      (void)refresh_nat(f.network);
  });
  c.ports.push_back(f);
  if (ports_.active(name))
    BH_CHECK(refresh_nat(f.network));
  BH_CHECK(save_locked(*e));
  undo.commit();
  events_.publish("container-updated", name, {{"port_added", to_json(claim, ports_.active(name))}});
  return to_json(claim, ports_.active(name));
}

Status Daemon::remove_port(const std::string &name, const std::string &host_port, const std::string &proto) {
  uint16_t port = BH_TRY(parse_port(host_port, "host port"));
  BH_CHECK(check_proto(proto));
  auto e = BH_TRY(get(name));
  std::unique_lock lock(e->mu);
  auto &c = e->rec.config;
  auto it = std::find_if(c.ports.begin(), c.ports.end(),
                         [&](const PortForward &f) { return f.host_port == port && f.proto == proto; });
  if (it == c.ports.end())
    return fail(fmt::format("container {} has no forward of host port {}/{}", name, port, proto), ENOENT);
  PortForward f = *it;
  auto index = it - c.ports.begin();
  auto claims = ports_.list(name);
  auto held = std::find_if(claims.begin(), claims.end(), [&](const PortTable::Claim &cl) {
    return cl.forward.host_port == port && cl.forward.proto == proto;
  });
  Revert undo;
  undo.add([&] {
    c.ports.insert(c.ports.begin() + index, f);
    if (held != claims.end())
      (void)ports_.claim(*held);
    if (ports_.active(name))
      (void)refresh_nat(f.network);
  });
  c.ports.erase(c.ports.begin() + index);
  ports_.release(port, proto);
  if (ports_.active(name))
    BH_CHECK(refresh_nat(f.network));
  BH_CHECK(save_locked(*e));
  undo.commit();
  events_.publish("container-updated", name, {{"port_removed", {{"host_port", port}, {"proto", proto}}}});
  return {};
}

} // namespace bulkhead::daemon
