#include "daemon/nic_setup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "daemon/nic_host.hpp"
#include "network/network.hpp"
#include "storage/resolve.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

std::string owner(const std::string &container, const std::string &nic) {
  return "container/" + container + "/" + nic;
}

Result<net::IpAddress> take(net::Ipam &ipam, const json &spec, const char *key, const std::string &who,
                            const std::string &network) {
  if (!spec.contains(key) || spec[key].is_null())
    return ipam.allocate(who);
  if (!spec[key].is_string())
    return fail(fmt::format("network {}: {} must be an address string", network, key), EINVAL);
  std::string text = spec[key].get<std::string>();
  auto a = net::IpAddress::parse(text);
  if (!a)
    return fail(fmt::format("network {}: {} {}: {}", network, key, text, a.error().message), EINVAL);
  if (auto r = ipam.claim(*a, who); !r)
    return fail(fmt::format("network {}: {}", network, r.error().message), EINVAL);
  return *a;
}

} // namespace

// The host end: "bh-" + the container's name + "-" + index when that fits 15 characters, else a
// shortened name with a hash of the full one (two long names sharing a prefix still differ).
std::string host_end_name(const std::string &container, size_t index) {
  std::string tail = "-" + std::to_string(index);
  std::string name = "bh-" + container + tail;
  if (name.size() <= 15)
    return name;
  uint32_t h = 2166136261u;
  for (unsigned char c : container)
    h = (h ^ c) * 16777619u;
  std::string hash = fmt::format("{:04x}", h & 0xffff);
  return "bh-" + container.substr(0, 15 - 3 - hash.size() - tail.size()) + hash + tail;
}

json nics_json(const std::vector<NicConfig> &nics) {
  json out = json::array();
  for (const auto &n : nics)
    out.push_back({{"network", n.network},
                   {"name", n.name},
                   {"host_name", n.host_name},
                   {"ipv4", n.ipv4.empty() ? json(nullptr) : json(n.ipv4)},
                   {"ipv6", n.ipv6.empty() ? json(nullptr) : json(n.ipv6)},
                   {"mac", n.mac.empty() ? json(nullptr) : json(n.mac)},
                   {"ingress", n.ingress.empty() ? json(nullptr) : json(n.ingress)},
                   {"egress", n.egress.empty() ? json(nullptr) : json(n.egress)}});
  return out;
}

void release_nics(Networks &networks, const std::string &container, const std::vector<NicConfig> &nics) {
  for (const auto &n : nics) {
    auto net = networks.get(n.network);
    if (!net)
      continue;
    for (const auto *c : {&net->ipv4, &net->ipv6})
      if (*c)
        if (auto ipam = net::Ipam::open(networks.ipam_path(n.network, (*c)->family()), **c, {(*c)->addr});
            ipam)
          (void)ipam->release_owner(owner(container, n.name));
  }
}

Result<NicConfig> allocate_nic(Networks &networks, const std::string &container, const json &spec,
                               size_t index) {
  if (!spec.is_object() || !spec.contains("network") || !spec["network"].is_string())
    return fail("each of \"nets\" needs a \"network\" name", EINVAL);
  for (auto it = spec.begin(); it != spec.end(); ++it)
    if (it.key() != "network" && it.key() != "ipv4" && it.key() != "ipv6" && it.key() != "ingress" &&
        it.key() != "egress")
      return fail(fmt::format("unknown field in a NIC: {}", it.key()), EINVAL);
  NicConfig nic;
  nic.network = spec["network"].get<std::string>();
  auto net = networks.get(nic.network);
  if (!net)
    return fail(fmt::format("network {} does not exist", nic.network), EINVAL);
  nic.name = "eth" + std::to_string(index);
  nic.host_name = host_end_name(container, index);
  nic.mac = stable_mac(container, index);
  if (spec.contains("ingress"))
    nic.ingress = BH_TRY(parse_cap(spec["ingress"], "network " + nic.network + ": ingress"));
  if (spec.contains("egress"))
    nic.egress = BH_TRY(parse_cap(spec["egress"], "network " + nic.network + ": egress"));
  Revert undo;
  std::string who = owner(container, nic.name);
  for (auto [key, cidr, slot] :
       {std::tuple{"ipv4", &net->ipv4, &nic.ipv4}, std::tuple{"ipv6", &net->ipv6, &nic.ipv6}}) {
    if (!*cidr) {
      if (spec.contains(key) && !spec[key].is_null())
        return fail(fmt::format("network {} has no {} subnet", nic.network, key), EINVAL);
      continue;
    }
    auto ipam = net::Ipam::open(networks.ipam_path(nic.network, (*cidr)->family()), **cidr, {(*cidr)->addr});
    if (!ipam)
      return tl::unexpected(ipam.error());
    auto a = take(*ipam, spec, key, who, nic.network);
    if (!a)
      return tl::unexpected(a.error());
    undo.add([path = networks.ipam_path(nic.network, (*cidr)->family()), c = **cidr, a = *a] {
      if (auto p = net::Ipam::open(path, c, {c.addr}); p)
        (void)p->release(a);
    });
    // A routed NIC's address is a host route's: /32, /128.
    *slot = net::Cidr{*a, net->type == "routed" ? (*cidr)->max_prefix() : (*cidr)->prefix}.str();
  }
  undo.commit();
  return nic;
}

Result<std::vector<NicConfig>> allocate_nics(Networks &networks, const std::string &container,
                                             const json &request) {
  std::vector<NicConfig> nics;
  if (request.is_null())
    return nics;
  if (!request.is_array())
    return fail("\"nets\" must be a list of {\"network\", \"ipv4\"?, \"ipv6\"?, \"ingress\"?, \"egress\"?}",
                EINVAL);
  Revert undo;
  for (const auto &spec : request) {
    auto nic = allocate_nic(networks, container, spec, nics.size());
    if (!nic)
      return tl::unexpected(nic.error());
    nics.push_back(*nic);
    undo.add([&networks, &container, n = *nic] { release_nics(networks, container, {n}); });
  }
  undo.commit();
  return nics;
}

Status setup_nic(Networks &networks, net::Netlink &host, net::Netlink &ct, const net::Netns &ct_ns,
                 NicConfig &nic, bool first, std::vector<net::LinkGuard> &guards) {
  auto net = networks.get(nic.network);
  if (!net)
    return fail(fmt::format("{}: network {} does not exist", nic.name, nic.network), ENOENT);
  if (net->type == "routed") {
    BH_CHECK(setup_routed_nic(host, ct, ct_ns, nic, *net, first, guards));
    return apply_nic_caps(host, nic);
  }
  auto bridge = net::get_link(host, net->bridge);
  if (!bridge)
    return tl::unexpected(bridge.error());
  // A host end left from the previous run (its netns is torn down asynchronously) goes first.
  BH_CHECK(net::ensure_link_absent(host, nic.host_name));
  auto guard = net::create_veth(host, nic.host_name, nic.name,
                                {bridge->mtu, "bulkhead:nic/" + nic.network + "/" + nic.name}, &ct_ns);
  if (!guard)
    return tl::unexpected(guard.error());
  guards.push_back(std::move(*guard));
  if (!nic.mac.empty())
    BH_CHECK(net::set_mac(ct, nic.name, nic.mac));
  BH_CHECK(net::set_master(host, nic.host_name, net->bridge));
  BH_CHECK(net::set_up(host, nic.host_name, true));
  for (const auto *text : {&nic.ipv4, &nic.ipv6}) {
    if (text->empty())
      continue;
    auto c = net::Cidr::parse(*text);
    if (!c)
      return tl::unexpected(c.error());
    BH_CHECK(net::ensure_address(ct, nic.name, *c, {.nodad = true}));
  }
  BH_CHECK(net::set_up(ct, nic.name, true));
  BH_CHECK(apply_nic_caps(host, nic));
  if (auto l = net::get_link(ct, nic.name); l)
    nic.mac = l->mac;
  // Default routes via the first NIC's network only (one default route per family).
  if (first)
    for (const auto *gw : {&net->ipv4, &net->ipv6})
      if (*gw && !(gw == &net->ipv4 ? nic.ipv4 : nic.ipv6).empty())
        BH_CHECK(net::ensure_route(ct, net::Route::default_via((*gw)->addr, nic.name)));
  return {};
}

namespace {

// The container's addresses may have lived behind another MAC a moment ago (on another host before
// a migration or failover, or behind this host's previous NIC before a reboot): announce each where
// it is now, so that neighbours switch at once rather than when their cache entries age out
// (network/announce.hpp). A routed address is answered for by the uplink (proxy ARP/NDP), so it is
// announced there with the uplink's MAC; a bridged one from inside the container with its own.
// Best effort: a failed announcement costs only that wait, so it is a warning, not a failed start.
void announce_nics(Networks &networks, net::Netlink &host, net::Netlink &ct, const net::Netns &ct_ns,
                   const std::vector<NicConfig> &nics) {
  for (const auto &nic : nics) {
    auto net = networks.get(nic.network);
    if (!net)
      continue;
    bool routed = net->type == "routed";
    auto link = routed ? net::get_link(host, net->uplink) : net::get_link(ct, nic.name);
    if (!link) {
      fmt::print(stderr, "bulkheadd: warning: announcing {}'s addresses: {}\n", nic.name,
                 link.error().text());
      continue;
    }
    for (const auto *text : {&nic.ipv4, &nic.ipv6}) {
      if (text->empty())
        continue;
      auto c = net::Cidr::parse(*text);
      if (!c)
        continue;
      auto send = [&] { return net::announce_address(link->index, link->mac, c->addr); };
      auto r = routed ? send() : net::run_in(ct_ns, send);
      if (!r)
        fmt::print(stderr, "bulkheadd: warning: announcing {} of {}: {}\n", c->addr.str(), nic.name,
                   r.error().text());
    }
  }
}

} // namespace

Status setup_nics(Networks &networks, std::vector<NicConfig> &nics, pid_t init_pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init_pid, 0)));
  if (!pidfd)
    return failf_errno("pidfd_open of container init {}", init_pid);
  auto ct_ns = net::Netns::of_pidfd(pidfd.get());
  if (!ct_ns)
    return tl::unexpected(ct_ns.error());
  auto host = net::Netlink::open();
  if (!host)
    return tl::unexpected(host.error());
  auto ct = net::Netlink::open(*ct_ns);
  if (!ct)
    return tl::unexpected(ct.error());
  BH_CHECK(net::set_up(*ct, "lo", true));
  std::vector<net::LinkGuard> guards;
  for (auto &nic : nics)
    BH_CHECK(setup_nic(networks, *host, *ct, *ct_ns, nic, &nic == &nics.front(), guards));
  for (auto &g : guards)
    g.release();
  announce_nics(networks, *host, *ct, *ct_ns, nics);
  return {};
}

Status write_network_files(Networks &networks, const std::string &upper, const std::string &hostname,
                           const std::vector<NicConfig> &nics, uid_t owner_uid, gid_t owner_gid) {
  if (nics.empty())
    return {};
  auto net = networks.get(nics.front().network);
  if (!net)
    return tl::unexpected(net.error());
  std::string resolv = "# written by bulkheadd from network " + net->name + "\n";
  for (const auto &a : net->dns)
    resolv += "nameserver " + a.str() + "\n";
  if (net->dns.empty() && net->type != "routed") // a routed network has no host address to name
    for (const auto *c : {&net->ipv4, &net->ipv6})
      if (*c)
        resolv += "nameserver " + (*c)->addr.str() + "\n";
  std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto *a : {&nics.front().ipv4, &nics.front().ipv6})
    if (!a->empty())
      hosts += a->substr(0, a->find('/')) + "\t" + hostname + "\n";
  UniqueFd root(::open(upper.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return failf_errno("opening {}", upper);
  // /etc in the upper layer: made when absent (overlayfs merges it with the template's).
  if (::mkdirat(root.get(), "etc", 0755) == 0) {
    if (::fchownat(root.get(), "etc", owner_uid, owner_gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("chown of {}/etc to {}:{}", upper, owner_uid, owner_gid);
  } else if (errno != EEXIST) {
    return failf_errno("creating {}/etc", upper);
  }
  auto etc = storage::open_in_root(root.get(), "etc", O_PATH | O_DIRECTORY);
  if (!etc)
    return tl::unexpected(etc.error());
  for (auto [file, text] : {std::pair{"resolv.conf", &resolv}, std::pair{"hosts", &hosts}}) {
    // A symlink in the container's own layer is replaced, not followed.
    if (::unlinkat(etc->get(), file, 0) < 0 && errno != ENOENT)
      return failf_errno("replacing {}/etc/{}", upper, file);
    BH_CHECK(write_file_atomic_at(etc->get(), file, *text, 0644));
    if (::fchownat(etc->get(), file, owner_uid, owner_gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("chown of {}/etc/{} to {}:{}", upper, file, owner_uid, owner_gid);
  }
  return {};
}

} // namespace bulkhead::daemon
