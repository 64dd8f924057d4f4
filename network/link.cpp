#include "network/link.hpp"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cstdio>

#include <fmt/format.h>

#include "network/message.hpp"

namespace bulkhead::net {
namespace {

LinkInfo parse_link(const nlmsghdr *nlh) {
  const auto *ifi = static_cast<const ifinfomsg *>(mnl_nlmsg_get_payload(nlh));
  Attrs<IFLA_MAX> a;
  a.parse_msg(nlh, sizeof *ifi);
  LinkInfo info;
  info.index = ifi->ifi_index;
  info.up = (ifi->ifi_flags & IFF_UP) != 0;
  info.name = a.str(IFLA_IFNAME);
  info.alias = a.str(IFLA_IFALIAS);
  info.mtu = a.u32(IFLA_MTU);
  info.master = static_cast<int>(a.u32(IFLA_MASTER));
  if (a[IFLA_ADDRESS]) {
    const auto *b = static_cast<const unsigned char *>(mnl_attr_get_payload(a[IFLA_ADDRESS]));
    for (uint16_t i = 0; i < mnl_attr_get_payload_len(a[IFLA_ADDRESS]); ++i)
      info.mac += fmt::format("{}{:02x}", i ? ":" : "", b[i]);
  }
  if (a[IFLA_LINKINFO]) {
    Attrs<IFLA_INFO_MAX> li;
    li.parse_nested(a[IFLA_LINKINFO]);
    info.kind = li.str(IFLA_INFO_KIND);
  }
  return info;
}

// RTM_NEWLINK without NLM_F_CREATE: "set" on an existing link, by name.
struct SetLink {
  Message msg{RTM_NEWLINK, 0};
  ifinfomsg *ifi;
  explicit SetLink(std::string_view name) {
    ifi = msg.put_struct<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    msg.put_str(IFLA_IFNAME, name);
  }
  explicit SetLink(int index) {
    ifi = msg.put_struct<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
  }
};

// The guard for a link just created; the alias is set now because the kernel ignores IFLA_IFALIAS
// in a creating RTM_NEWLINK.
Result<LinkGuard> adopt_created(Netlink &nl, std::string_view name, const LinkOptions &opts) {
  auto info = BH_TRY(get_link(nl, name));
  LinkGuard guard(nl, info.index, info.name);
  if (!opts.alias.empty())
    BH_CHECK(set_alias(nl, name, opts.alias));
  return guard;
}

Result<LinkGuard> create_kind(Netlink &nl, std::string_view name, const char *kind, const LinkOptions &opts) {
  Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC;
  msg.put_str(IFLA_IFNAME, name);
  if (opts.mtu)
    msg.put_u32(IFLA_MTU, opts.mtu);
  auto *li = msg.nest(IFLA_LINKINFO);
  msg.put_str(IFLA_INFO_KIND, kind);
  msg.end(li);
  BH_CHECK(nl.request(msg.hdr(), fmt::format("creating {} {}", kind, name)));
  return adopt_created(nl, name, opts);
}

} // namespace

LinkGuard::~LinkGuard() {
  if (nl_)
    (void)delete_link(*nl_, index_);
}

Result<std::optional<LinkInfo>> find_link(Netlink &nl, std::string_view name) {
  Message msg(RTM_GETLINK, 0);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC;
  msg.put_str(IFLA_IFNAME, name);
  msg.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> out;
  auto r = nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type == RTM_NEWLINK)
          out = parse_link(nlh);
        return {};
      },
      fmt::format("looking up link {}", name));
  if (!r && r.error().code == ENODEV)
    return std::optional<LinkInfo>();
  if (!r)
    return tl::unexpected<Error>(r.error());
  return out;
}

Result<LinkInfo> get_link(Netlink &nl, std::string_view name) {
  auto found = BH_TRY(find_link(nl, name));
  if (!found)
    return fail(fmt::format("link {}", name), ENODEV);
  return *found;
}

Result<LinkInfo> get_link(Netlink &nl, int index) {
  Message msg(RTM_GETLINK, 0);
  msg.put_struct<ifinfomsg>()->ifi_index = index;
  msg.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  LinkInfo out;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type == RTM_NEWLINK)
          out = parse_link(nlh);
        return {};
      },
      fmt::format("looking up link index {}", index)));
  return out;
}

Result<std::vector<LinkInfo>> list_links(Netlink &nl) {
  Message msg(RTM_GETLINK, NLM_F_DUMP);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC;
  msg.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::vector<LinkInfo> out;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type == RTM_NEWLINK)
          out.push_back(parse_link(nlh));
        return {};
      },
      "listing links"));
  return out;
}

Result<LinkGuard> create_bridge(Netlink &nl, std::string_view name, const LinkOptions &opts) {
  return create_kind(nl, name, "bridge", opts);
}

Result<LinkGuard> create_ifb(Netlink &nl, std::string_view name, const LinkOptions &opts) {
  return create_kind(nl, name, "ifb", opts);
}

Result<LinkGuard> create_veth(Netlink &nl, std::string_view name, std::string_view peer,
                              const LinkOptions &opts, const Netns *peer_ns) {
  Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC;
  msg.put_str(IFLA_IFNAME, name);
  if (opts.mtu)
    msg.put_u32(IFLA_MTU, opts.mtu);
  auto *li = msg.nest(IFLA_LINKINFO);
  msg.put_str(IFLA_INFO_KIND, "veth");
  auto *data = msg.nest(IFLA_INFO_DATA);
  auto *p = msg.nest(VETH_INFO_PEER);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC; // the peer's own header, inside the nest
  msg.put_str(IFLA_IFNAME, peer);
  if (opts.mtu)
    msg.put_u32(IFLA_MTU, opts.mtu);
  if (peer_ns && !peer_ns->is_caller())
    msg.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns->fd()));
  msg.end(p);
  msg.end(data);
  msg.end(li);
  BH_CHECK(nl.request(msg.hdr(), fmt::format("creating veth pair {} / {}", name, peer)));
  return adopt_created(nl, name, opts);
}

Status set_mtu(Netlink &nl, std::string_view name, unsigned mtu) {
  SetLink s(name);
  s.msg.put_u32(IFLA_MTU, mtu);
  return nl.request(s.msg.hdr(), fmt::format("setting MTU {} on {}", mtu, name));
}

Status set_up(Netlink &nl, std::string_view name, bool up) {
  SetLink s(name);
  s.ifi->ifi_change = IFF_UP;
  s.ifi->ifi_flags = up ? IFF_UP : 0;
  return nl.request(s.msg.hdr(), fmt::format("setting {} {}", name, up ? "up" : "down"));
}

Status set_alias(Netlink &nl, std::string_view name, std::string_view alias) {
  SetLink s(name);
  s.msg.put_str(IFLA_IFALIAS, alias);
  return nl.request(s.msg.hdr(), fmt::format("setting the alias of {} to '{}'", name, alias));
}

Result<std::array<uint8_t, 6>> parse_mac(std::string_view mac) {
  std::array<uint8_t, 6> bytes{};
  unsigned v[6];
  char tail = 0;
  std::string text(mac);
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6 ||
      text.size() != 17)
    return failf("MAC address '{}': expected aa:bb:cc:dd:ee:ff", mac);
  for (int i = 0; i < 6; ++i)
    bytes[i] = static_cast<uint8_t>(v[i]);
  return bytes;
}

Status set_mac(Netlink &nl, std::string_view name, std::string_view mac) {
  auto bytes = parse_mac(mac);
  if (!bytes)
    return failf("MAC address '{}' for {}: expected aa:bb:cc:dd:ee:ff", mac, name);
  SetLink s(name);
  s.msg.put(IFLA_ADDRESS, bytes->data(), bytes->size());
  return nl.request(s.msg.hdr(), fmt::format("setting the MAC address of {} to {}", name, mac));
}

Status rename_link(Netlink &nl, std::string_view name, std::string_view new_name) {
  auto info = BH_TRY(get_link(nl, name));
  SetLink s(info.index);
  s.msg.put_str(IFLA_IFNAME, new_name);
  return nl.request(s.msg.hdr(), fmt::format("renaming {} to {}", name, new_name));
}

Status set_master(Netlink &nl, std::string_view name, std::string_view bridge) {
  int master = 0;
  if (!bridge.empty())
    master = BH_TRY(get_link(nl, bridge)).index;
  SetLink s(name);
  s.msg.put_u32(IFLA_MASTER, static_cast<uint32_t>(master));
  return nl.request(s.msg.hdr(), bridge.empty() ? fmt::format("detaching {} from its bridge", name)
                                                : fmt::format("attaching {} to bridge {}", name, bridge));
}

Status move_link(Netlink &nl, std::string_view name, const Netns &target, std::string_view new_name) {
  if (target.is_caller())
    return failf("moving {}: no target network namespace given", name);
  auto info = BH_TRY(get_link(nl, name));
  SetLink s(info.index);
  s.msg.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(target.fd()));
  if (!new_name.empty())
    s.msg.put_str(IFLA_IFNAME, new_name); // renamed in the target netns by the same request
  return nl.request(s.msg.hdr(), new_name.empty() ? fmt::format("moving {} to netns fd {}", name, target.fd())
                                                  : fmt::format("moving {} to netns fd {} as {}", name,
                                                                target.fd(), new_name));
}

Status delete_link(Netlink &nl, std::string_view name) {
  Message msg(RTM_DELLINK, 0);
  msg.put_struct<ifinfomsg>()->ifi_family = AF_UNSPEC;
  msg.put_str(IFLA_IFNAME, name);
  return nl.request(msg.hdr(), fmt::format("deleting link {}", name));
}

Status delete_link(Netlink &nl, int index) {
  Message msg(RTM_DELLINK, 0);
  msg.put_struct<ifinfomsg>()->ifi_index = index;
  return nl.request(msg.hdr(), fmt::format("deleting link index {}", index));
}

Status ensure_link_absent(Netlink &nl, std::string_view name) {
  auto r = delete_link(nl, name);
  if (!r && r.error().code == ENODEV)
    return {};
  return r;
}

Result<LinkInfo> ensure_bridge(Netlink &nl, std::string_view name, const LinkOptions &opts) {
  auto found = BH_TRY(find_link(nl, name));
  if (found) {
    if (found->kind != "bridge")
      return failf("link {} exists and is not a bridge (kind '{}')", name, found->kind);
    if (found->alias != opts.alias)
      return failf("bridge {} exists and is not ours (alias '{}', expected '{}')", name, found->alias,
                   opts.alias);
    if (opts.mtu && found->mtu != opts.mtu)
      BH_CHECK(set_mtu(nl, name, opts.mtu));
    if (!found->up)
      BH_CHECK(set_up(nl, name, true));
    return get_link(nl, name);
  }
  auto guard = BH_TRY(create_bridge(nl, name, opts));
  BH_CHECK(set_up(nl, name, true));
  guard.release();
  return get_link(nl, name);
}

} // namespace bulkhead::net
