#include "daemon/networks.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "daemon/nat.hpp"
#include "daemon/routed_network.hpp"
#include "network/network.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

// "bh-" + name must fit IFNAMSIZ - 1 = 15 characters.
constexpr size_t kMaxNetworkName = 12;

Status check_network_name(const std::string &name) {
  if (name.empty() || name.size() > kMaxNetworkName)
    return fail(fmt::format("network name '{}': 1 to {} characters", name, kMaxNetworkName), EINVAL);
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
    if (!ok)
      return fail(fmt::format("network name '{}': only a-z, 0-9 and '-' (not first)", name), EINVAL);
  }
  return {};
}

std::string link_alias(const std::string &name) { return "bulkhead:network/" + name; }

Result<net::Cidr> parse_host_cidr(const json &req, const char *key, int family) {
  if (!req[key].is_string())
    return fail(fmt::format("{}: expected a string like {}", key,
                            family == AF_INET ? "198.18.77.1/24" : "fd42:77::1/64"),
                EINVAL);
  auto text = req[key].get<std::string>();
  auto c = net::Cidr::parse(text);
  if (!c)
    return fail(fmt::format("{} {}: {}", key, text, c.error().message), EINVAL);
  if (c->family() != family)
    return fail(fmt::format("{} {}: not an {} address", key, text, family == AF_INET ? "IPv4" : "IPv6"),
                EINVAL);
  if (text.find('/') == std::string::npos || c->max_prefix() - c->prefix < 2)
    return fail(fmt::format("{} {}: give the bridge's address with a prefix length leaving room for "
                            "containers (at most /{})",
                            key, text, c->max_prefix() - 2),
                EINVAL);
  if (c->addr == c->network() || (family == AF_INET && c->addr == c->last()))
    return fail(fmt::format("{} {}: the bridge needs a host address, not the network or broadcast address",
                            key, text),
                EINVAL);
  return *c;
}

Status parse_nat(const json &req, NetworkRecord &n) {
  if (req.contains("nat") && !req["nat"].is_null()) {
    if (!req["nat"].is_boolean())
      return fail(fmt::format("network {}: \"nat\" must be true or false", n.name), EINVAL);
    n.nat = req["nat"].get<bool>();
  }
  if (req.contains("uplink") && !req["uplink"].is_null()) {
    if (!req["uplink"].is_string())
      return fail(fmt::format("network {}: \"uplink\" must be an interface name", n.name), EINVAL);
    n.uplink = req["uplink"].get<std::string>();
    if (!n.nat)
      return fail(fmt::format("network {}: an uplink is for a routed network or a NATed one (--nat)", n.name),
                  EINVAL);
    if (auto r = check_uplink_name(n.uplink); !r)
      return fail(fmt::format("network {}: {}", n.name, r.error().message), EINVAL);
  }
  if (n.nat && !n.ipv4)
    return fail(fmt::format("network {}: --nat masquerades IPv4 and needs --ipv4", n.name), EINVAL);
  return {};
}

} // namespace

json to_json(const NetworkRecord &n) {
  json j = {{"name", n.name},
            {"type", n.type},
            {"bridge", n.bridge},
            {"mtu", n.mtu},
            {"created_unix", n.created_unix}};
  j["ipv4"] = n.ipv4 ? json(n.ipv4->str()) : json(nullptr);
  j["ipv6"] = n.ipv6 ? json(n.ipv6->str()) : json(nullptr);
  j["nat"] = n.nat;
  j["uplink"] = n.uplink.empty() ? json(nullptr) : json(n.uplink);
  j["dns"] = json::array();
  for (const auto &a : n.dns)
    j["dns"].push_back(a.str());
  return j;
}

Result<NetworkRecord> network_from_json(const json &j) {
  try {
    NetworkRecord n;
    n.name = j.at("name").get<std::string>();
    n.bridge = j.at("bridge").get<std::string>();
    n.type = j.value("type", std::string("bridge"));
    n.mtu = j.value("mtu", 0u);
    n.created_unix = j.value("created_unix", int64_t{0});
    n.nat = j.value("nat", false);
    if (j.contains("uplink") && j["uplink"].is_string())
      n.uplink = j["uplink"].get<std::string>();
    for (auto [key, slot] : {std::pair{"ipv4", &n.ipv4}, std::pair{"ipv6", &n.ipv6}}) {
      if (!j.contains(key) || j[key].is_null())
        continue;
      auto c = net::Cidr::parse(j[key].get<std::string>());
      if (!c)
        return tl::unexpected(c.error());
      *slot = *c;
    }
    for (const auto &d : j.value("dns", json::array())) {
      auto a = net::IpAddress::parse(d.get<std::string>());
      if (!a)
        return tl::unexpected(a.error());
      n.dns.push_back(*a);
    }
    return n;
  } catch (const json::exception &e) {
    return fail(std::string("network record: ") + e.what(), EINVAL);
  }
}

std::string Networks::ipam_path(const std::string &name, int family) const {
  return dir_ + "/" + name + (family == AF_INET ? ".v4.json" : ".v6.json");
}

// Makes (or adopts) the bridge and its host addresses and opens the IPAM records. On failure a
// bridge this call created is deleted again.
Status Networks::bring_up(const NetworkRecord &n, bool *created_bridge) {
  if (n.type == "routed")
    return bring_up_routed(n,
                           [this](const std::string &name, int family) { return ipam_path(name, family); });
  auto nl = net::Netlink::open();
  if (!nl)
    return tl::unexpected(nl.error());
  auto existing = net::find_link(*nl, n.bridge);
  if (!existing)
    return tl::unexpected(existing.error());
  Revert undo;
  auto info = net::ensure_bridge(*nl, n.bridge, {n.mtu, link_alias(n.name)});
  if (!info)
    return tl::unexpected(info.error());
  if (!*existing) {
    undo.add([&nl, &n] { (void)net::ensure_link_absent(*nl, n.bridge); });
    if (created_bridge)
      *created_bridge = true;
  }
  for (const auto *c : {&n.ipv4, &n.ipv6}) {
    if (!*c)
      continue;
    BH_CHECK(net::ensure_address(*nl, n.bridge, **c, {.nodad = true}));
    auto ipam = net::Ipam::open(ipam_path(n.name, (*c)->family()), **c, {(*c)->addr});
    if (!ipam)
      return tl::unexpected(ipam.error());
  }
  if (n.nat) {
    undo.add([&n] { (void)remove_nat(n.name); });
    BH_CHECK(apply_nat(n, forwards_ ? forwards_(n.name) : std::vector<DnatRule>{}));
  }
  undo.commit();
  return {};
}

Status Networks::init() {
  if (::mkdir(dir_.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir_);
  DIR *d = ::opendir(dir_.c_str());
  if (!d)
    return failf_errno("reading {}", dir_);
  std::vector<std::string> names;
  while (auto *ent = ::readdir(d)) {
    std::string f = ent->d_name;
    if (f.size() > 5 && f.ends_with(".json") && f.find('.') == f.size() - 5)
      names.push_back(f.substr(0, f.size() - 5));
  }
  ::closedir(d);
  std::lock_guard lock(mu_);
  for (const auto &name : names) {
    auto text = read_file(record_path(name));
    Result<NetworkRecord> n = text ? [&]() -> Result<NetworkRecord> {
      try {
        return network_from_json(json::parse(*text));
      } catch (const json::exception &e) {
        return failf("{}: {}", record_path(name), e.what());
      }
    }()
        : Result<NetworkRecord>(tl::unexpected(text.error()));
    if (!n) {
      fmt::print(stderr, "bulkheadd: warning: skipping network record {}: {}\n", record_path(name),
                 n.error().text());
      continue;
    }
    if (auto r = bring_up(*n, nullptr); !r)
      fmt::print(stderr, "bulkheadd: warning: network {}: {}\n", name, r.error().text());
    nets_[n->name] = *n;
  }
  return {};
}

json Networks::list() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto &[name, n] : nets_)
    out.push_back(to_json(n));
  return out;
}

Result<NetworkRecord> Networks::get(const std::string &name) const {
  std::lock_guard lock(mu_);
  auto it = nets_.find(name);
  if (it == nets_.end())
    return fail(fmt::format("no network named {}", name), ENOENT);
  return it->second;
}

Result<json> Networks::info(const std::string &name) const {
  auto n = get(name);
  if (!n)
    return tl::unexpected(n.error());
  return to_json(*n);
}

Result<json> Networks::create(const json &req) {
  if (!req.is_object())
    return fail("a network request is a JSON object", EINVAL);
  for (auto it = req.begin(); it != req.end(); ++it)
    if (it.key() != "name" && it.key() != "type" && it.key() != "ipv4" && it.key() != "ipv6" &&
        it.key() != "dns" && it.key() != "nat" && it.key() != "uplink")
      return fail(fmt::format("unknown field in a network request: {}", it.key()), EINVAL);
  if (!req.contains("name") || !req["name"].is_string())
    return fail("a network needs a \"name\"", EINVAL);
  NetworkRecord n;
  n.name = req["name"].get<std::string>();
  BH_CHECK(check_network_name(n.name));
  if (req.contains("type") && req["type"] != "bridge" && req["type"] != "routed")
    return fail(fmt::format("network {}: type must be \"bridge\" or \"routed\"", n.name), EINVAL);
  if (req.contains("type") && req["type"] == "routed") {
    if (req.contains("nat") && req["nat"] == true)
      return fail(
          fmt::format("network {}: \"nat\" is for bridge networks (a routed NIC's addresses are its own)",
                      n.name),
          EINVAL);
    BH_CHECK(parse_routed_request(req, n));
  } else {
    n.bridge = "bh-" + n.name;
  }
  n.mtu = 1500;
  for (auto [key, family, slot] :
       {std::tuple{"ipv4", AF_INET, &n.ipv4}, std::tuple{"ipv6", AF_INET6, &n.ipv6}}) {
    if (!req.contains(key) || req[key].is_null())
      continue;
    auto c = n.type == "routed" ? parse_routed_subnet(req, key, family) : parse_host_cidr(req, key, family);
    if (!c)
      return fail(fmt::format("network {}: {}", n.name, c.error().message), EINVAL);
    *slot = *c;
  }
  if (n.type != "routed") // a routed network's uplink was read with the rest of its request
    BH_CHECK(parse_nat(req, n));
  if (req.contains("dns") && !req["dns"].is_null()) {
    if (!req["dns"].is_array())
      return fail(fmt::format("network {}: \"dns\" must be a list of addresses", n.name), EINVAL);
    for (const auto &d : req["dns"]) {
      if (!d.is_string())
        return fail(fmt::format("network {}: dns {}: not an address string", n.name, d.dump()), EINVAL);
      auto a = net::IpAddress::parse(d.get<std::string>());
      if (!a)
        return fail(fmt::format("network {}: dns {}: {}", n.name, d.get<std::string>(), a.error().message),
                    EINVAL);
      n.dns.push_back(*a);
    }
  }
  n.created_unix =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();

  std::lock_guard lock(mu_);
  if (nets_.count(n.name))
    return fail(fmt::format("network {} already exists", n.name), EEXIST);
  for (const auto &[other_name, other] : nets_)
    for (auto [mine, theirs] : {std::pair{&n.ipv4, &other.ipv4}, std::pair{&n.ipv6, &other.ipv6}})
      if (*mine && *theirs && (*mine)->overlaps(**theirs))
        return fail(fmt::format("network {}: subnet {} overlaps network {} ({})", n.name, (*mine)->str(),
                                other_name, (*theirs)->str()),
                    EINVAL);

  Revert undo;
  bool created = false;
  auto fail_up = bring_up(n, &created);
  if (created)
    undo.add([&n] {
      if (auto nl = net::Netlink::open())
        (void)net::ensure_link_absent(*nl, n.bridge);
    });
  if (n.nat)
    undo.add([&n] { (void)remove_nat(n.name); });
  for (int family : {AF_INET, AF_INET6}) {
    std::string p = ipam_path(n.name, family);
    undo.add([p] {
      ::unlink(p.c_str());
      ::unlink((p + ".lock").c_str());
    });
  }
  if (!fail_up)
    return fail(fmt::format("network {}: {}", n.name, fail_up.error().message), fail_up.error().code);
  if (auto nl = net::Netlink::open(); nl)
    if (auto l = net::get_link(*nl, n.type == "routed" ? n.uplink : n.bridge); l)
      n.mtu = l->mtu;
  BH_CHECK(write_file_durable(record_path(n.name), to_json(n).dump(2) + "\n", 0600));
  undo.commit();
  nets_[n.name] = n;
  return to_json(n);
}

Status Networks::remove(const std::string &name,
                        const std::function<std::vector<std::string>(const std::string &)> &users) {
  std::lock_guard lock(mu_);
  auto it = nets_.find(name);
  if (it == nets_.end())
    return fail(fmt::format("no network named {}", name), ENOENT);
  if (auto u = users(name); !u.empty()) {
    std::string list;
    for (const auto &c : u)
      list += (list.empty() ? "" : ", ") + c;
    return fail(fmt::format("network {} is used by {}", name, list), EBUSY);
  }
  auto nl = net::Netlink::open();
  if (!nl)
    return tl::unexpected(nl.error());
  if (it->second.nat) // only then: a host without nf_tables can still remove plain networks
    BH_CHECK(remove_nat(name));
  if (!it->second.bridge.empty())
    BH_CHECK(net::ensure_link_absent(*nl, it->second.bridge));
  if (::unlink(record_path(name).c_str()) < 0 && errno != ENOENT)
    return failf_errno("removing {}", record_path(name));
  for (int family : {AF_INET, AF_INET6}) {
    std::string p = ipam_path(name, family);
    ::unlink(p.c_str());
    ::unlink((p + ".lock").c_str());
  }
  nets_.erase(it);
  return {};
}

} // namespace bulkhead::daemon
