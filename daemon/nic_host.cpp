#include "daemon/nic_host.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/core.h>

#include "bulkhead/unique_fd.hpp"
#include "daemon/routed_network.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

net::IpAddress must_ip(const char *text) { return *net::IpAddress::parse(text); }

// Addresses, routes and proxy entries of a routed NIC whose veth exists; every call replaces, so
// this is also the re-adoption of a running container's NIC.
Status configure_routed(net::Netlink &host, net::Netlink &ct, const NicConfig &nic, const NetworkRecord &net,
                        bool first) {
  BH_CHECK(net::set_up(host, nic.host_name, true));
  if (!nic.ipv4.empty())
    BH_CHECK(net::ensure_address(host, nic.host_name, net::Cidr::host(must_ip(kRoutedGateway4))));
  if (!nic.ipv6.empty())
    BH_CHECK(
        net::ensure_address(host, nic.host_name, net::Cidr{must_ip(kRoutedGateway6), 64}, {.nodad = true}));
  for (const auto *text : {&nic.ipv4, &nic.ipv6}) {
    if (text->empty())
      continue;
    auto c = BH_TRY(net::Cidr::parse(*text));
    BH_CHECK(net::ensure_address(ct, nic.name, net::Cidr::host(c.addr), {.nodad = true}));
  }
  BH_CHECK(net::set_up(ct, nic.name, true));
  if (first) {
    if (!nic.ipv4.empty())
      BH_CHECK(net::ensure_route(ct, net::Route::default_via(must_ip(kRoutedGateway4), nic.name, true)));
    if (!nic.ipv6.empty())
      BH_CHECK(net::ensure_route(ct, net::Route::default_via(must_ip(kRoutedGateway6), nic.name)));
  }
  for (const auto *text : {&nic.ipv4, &nic.ipv6}) {
    if (text->empty())
      continue;
    auto c = BH_TRY(net::Cidr::parse(*text));
    BH_CHECK(net::ensure_route(host, net::Route::host(c.addr, nic.host_name)));
    // IPv4 needs no entry: proxy_arp on the uplink answers for every address routed elsewhere.
    if (!c.addr.is_v4())
      BH_CHECK(net::ensure_proxy_neighbour(host, net.uplink, c.addr));
  }
  return {};
}

Result<UniqueFd> open_pidfd(pid_t pid) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd)
    return failf_errno("pidfd_open of container init {}", pid);
  return fd;
}

// A container's cap gets a bucket of 100 ms at the rate (at least 32 KiB): TBF refills from a
// timer, and on a busy or virtualised host late timers would otherwise leave the link idle and
// the measured rate under the cap (a 16 KiB bucket measured 85-91 % of 10mbit in the TCG VM).
net::ShapeOptions shape_for(const net::Rate &rate) {
  net::ShapeOptions o;
  // At least 128 KiB: a GSO/GRO packet is up to 64 KiB plus headers, and TBF can never send a
  // queued packet larger than its bucket. A live rate change keeps the queue, so packets queued
  // under a larger bucket then block the NIC for good (seen: 0 bit/s after `set --net-limit
  // egress=5mbit`, whose 100 ms bucket is 62.5 KB, with two 68 KB packets queued).
  o.burst_bytes = static_cast<uint32_t>(std::max<uint64_t>(128 * 1024, rate.bytes_per_second() / 10));
  o.latency_ms = 200; // a queue deep enough that TCP over a slow path is not cut back by tail drops

  return o;
}

} // namespace

std::string stable_mac(const std::string &container, size_t index) {
  uint64_t h = 1469598103934665603ull; // FNV-1a 64 of "name/index"
  for (unsigned char c : container + "/" + std::to_string(index))
    h = (h ^ c) * 1099511628211ull;
  unsigned char b[6];
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(h >> (8 * i));
  b[0] = static_cast<unsigned char>((b[0] & 0xfc) | 0x02); // locally administered, unicast
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
}

Result<std::string> parse_cap(const json &value, const std::string &what) {
  if (value.is_null())
    return std::string();
  if (!value.is_string())
    return fail(fmt::format("{}: expected a rate like 10mbit, or none", what), EINVAL);
  auto text = value.get<std::string>();
  if (text == "none")
    return std::string();
  auto r = net::Rate::parse(text);
  if (!r)
    return fail(fmt::format("{}: {}", what, r.error().message), EINVAL);
  return r->str();
}

Status setup_routed_nic(net::Netlink &host, net::Netlink &ct, const net::Netns &ct_ns, NicConfig &nic,
                        const NetworkRecord &net, bool first, std::vector<net::LinkGuard> &guards) {
  auto uplink = net::get_link(host, net.uplink);
  if (!uplink)
    return fail(fmt::format("{}: the uplink of network {}: {}", nic.name, net.name, uplink.error().message),
                uplink.error().code);
  BH_CHECK(net::ensure_link_absent(host, nic.host_name));
  guards.push_back(BH_TRY(net::create_veth(
      host, nic.host_name, nic.name, {uplink->mtu, "bulkhead:nic/" + net.name + "/" + nic.name}, &ct_ns)));
  if (!nic.mac.empty())
    BH_CHECK(net::set_mac(ct, nic.name, nic.mac));
  return configure_routed(host, ct, nic, net, first);
}

Status apply_nic_caps(net::Netlink &host, const NicConfig &nic) {
  // The host end's egress is the container's download (ingress), its ingress the upload.
  {
    auto now = BH_TRY(net::egress_limit(host, nic.host_name));
    if (nic.ingress.empty()) {
      if (now)
        BH_CHECK(net::clear_egress_limit(host, nic.host_name));
    } else {
      auto want = BH_TRY(net::Rate::parse(nic.ingress));
      if (!now || now->bits_per_second != want.bits_per_second)
        BH_CHECK(net::set_egress_limit(host, nic.host_name, want, shape_for(want)));
    }
  }
  auto now = BH_TRY(net::ingress_limit(host, nic.host_name));
  if (nic.egress.empty()) {
    if (now)
      BH_CHECK(net::clear_ingress_limit(host, nic.host_name));
    return {};
  }
  auto want = BH_TRY(net::Rate::parse(nic.egress));
  if (!now || now->bits_per_second != want.bits_per_second)
    BH_CHECK(net::set_ingress_limit(host, nic.host_name, want, shape_for(want)));
  return {};
}

void teardown_nics_host(Networks &networks, const std::vector<NicConfig> &nics) {
  if (nics.empty())
    return;
  auto host = net::Netlink::open();
  if (!host) {
    fmt::print(stderr, "bulkheadd: warning: NIC teardown: {}\n", host.error().text());
    return;
  }
  auto warn = [](const NicConfig &nic, const Status &r) {
    if (!r)
      fmt::print(stderr, "bulkheadd: warning: tearing down {}: {}\n", nic.host_name, r.error().text());
  };
  for (const auto &nic : nics) {
    if (auto l = net::find_link(*host, nic.host_name); l && *l) {
      warn(nic, net::clear_ingress_limit(*host, nic.host_name));
      warn(nic, net::ensure_link_absent(*host, nic.host_name));
    }
    // The IFB of a host end that went with the container's netns stays in ours: found by its alias.
    if (auto links = net::list_links(*host))
      for (const auto &l : *links)
        if (l.kind == "ifb" && l.alias == "bulkhead:ingress/" + nic.host_name)
          warn(nic, net::delete_link(*host, l.index));
    auto net = networks.get(nic.network);
    if (net && net->type == "routed" && !nic.ipv6.empty())
      if (auto c = net::Cidr::parse(nic.ipv6)) {
        auto r = net::delete_proxy_neighbour(*host, net->uplink, c->addr);
        if (!r && r.error().code != ENOENT && r.error().code != ENODEV)
          warn(nic, r);
      }
  }
}

Status readopt_nics(Networks &networks, std::vector<NicConfig> &nics, pid_t init_pid) {
  if (nics.empty())
    return {};
  auto pidfd = BH_TRY(open_pidfd(init_pid));
  auto ct_ns = BH_TRY(net::Netns::of_pidfd(pidfd.get()));
  auto host = BH_TRY(net::Netlink::open());
  auto ct = BH_TRY(net::Netlink::open(ct_ns));
  for (auto &nic : nics) {
    auto net = BH_TRY(networks.get(nic.network));
    auto end = BH_TRY(net::find_link(host, nic.host_name));
    if (!end)
      return fail(fmt::format("{}: its host end {} is gone; restart the container to make it again", nic.name,
                              nic.host_name),
                  ENODEV);
    bool first = &nic == &nics.front();
    if (net.type == "routed") {
      BH_CHECK(configure_routed(host, ct, nic, net, first));
    } else {
      auto bridge = BH_TRY(net::get_link(host, net.bridge));
      if (end->master != bridge.index)
        BH_CHECK(net::set_master(host, nic.host_name, net.bridge));
      BH_CHECK(net::set_up(host, nic.host_name, true));
      for (const auto *text : {&nic.ipv4, &nic.ipv6})
        if (!text->empty())
          BH_CHECK(net::ensure_address(ct, nic.name, BH_TRY(net::Cidr::parse(*text)), {.nodad = true}));
      BH_CHECK(net::set_up(ct, nic.name, true));
      if (first)
        for (const auto *gw : {&net.ipv4, &net.ipv6})
          if (*gw && !(gw == &net.ipv4 ? nic.ipv4 : nic.ipv6).empty())
            BH_CHECK(net::ensure_route(ct, net::Route::default_via((*gw)->addr, nic.name)));
    }
    BH_CHECK(apply_nic_caps(host, nic));
  }
  return {};
}

Status set_nic_limits(std::vector<NicConfig> &nics, const json &request, bool running) {
  if (!request.is_array() || request.empty())
    return fail("\"net_limits\" must be a list of {\"nic\"?, \"ingress\"?, \"egress\"?}", EINVAL);
  std::vector<NicConfig> changed = nics;
  for (const auto &spec : request) {
    if (!spec.is_object())
      return fail("each of \"net_limits\" is an object {\"nic\"?, \"ingress\"?, \"egress\"?}", EINVAL);
    for (auto it = spec.begin(); it != spec.end(); ++it)
      if (it.key() != "nic" && it.key() != "ingress" && it.key() != "egress")
        return fail(fmt::format("unknown field in a NIC limit: {}", it.key()), EINVAL);
    if (!spec.contains("ingress") && !spec.contains("egress"))
      return fail("a NIC limit needs ingress= and/or egress=", EINVAL);
    std::string name = "eth0";
    if (spec.contains("nic")) {
      if (!spec["nic"].is_string())
        return fail("\"nic\" must be a NIC name like eth0", EINVAL);
      name = spec["nic"].get<std::string>();
    }
    auto it =
        std::find_if(changed.begin(), changed.end(), [&](const NicConfig &n) { return n.name == name; });
    if (it == changed.end())
      return fail(fmt::format("the container has no NIC {}", name), EINVAL);
    if (spec.contains("ingress"))
      it->ingress = BH_TRY(parse_cap(spec["ingress"], name + " ingress"));
    if (spec.contains("egress"))
      it->egress = BH_TRY(parse_cap(spec["egress"], name + " egress"));
  }
  if (running) {
    auto host = BH_TRY(net::Netlink::open());
    for (size_t i = 0; i < changed.size(); ++i) {
      if (auto r = apply_nic_caps(host, changed[i]); !r) {
        for (size_t j = 0; j <= i; ++j) // back to what was applied before
          (void)apply_nic_caps(host, nics[j]);
        return fail(fmt::format("applying the caps of {}: {}", changed[i].name, r.error().message),
                    r.error().code);
      }
    }
  }
  nics = std::move(changed);
  return {};
}

} // namespace bulkhead::daemon
