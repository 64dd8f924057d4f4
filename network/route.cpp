#include "network/route.hpp"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <map>

#include "network/link.hpp"
#include "network/message.hpp"

namespace bulkhead::net {
namespace {

Status route_request(Netlink &nl, uint16_t type, uint16_t flags, const Route &r, std::string_view verb) {
  int oif = 0;
  if (!r.dev.empty())
    oif = BH_TRY(get_link(nl, r.dev)).index;
  Message msg(type, flags);
  auto *rtm = msg.put_struct<rtmsg>();
  rtm->rtm_family = static_cast<uint8_t>(r.dst.family());
  rtm->rtm_dst_len = static_cast<uint8_t>(r.dst.prefix);
  rtm->rtm_table = static_cast<uint8_t>(r.table < 256 ? r.table : uint32_t{RT_TABLE_UNSPEC});
  rtm->rtm_protocol = r.protocol;
  rtm->rtm_type = RTN_UNICAST;
  // IPv4 routes straight to a device are link-scoped; anything through a gateway is universe.
  rtm->rtm_scope = (r.gateway || !r.dst.addr.is_v4()) ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  if (type == RTM_DELROUTE)
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
  if (r.onlink)
    rtm->rtm_flags |= RTNH_F_ONLINK;
  msg.put_u32(RTA_TABLE, r.table);
  if (r.dst.prefix > 0)
    msg.put(RTA_DST, r.dst.network().bytes.data(), r.dst.addr.size());
  if (r.gateway)
    msg.put(RTA_GATEWAY, r.gateway->bytes.data(), r.gateway->size());
  if (oif)
    msg.put_u32(RTA_OIF, static_cast<uint32_t>(oif));
  if (r.metric)
    msg.put_u32(RTA_PRIORITY, r.metric);
  return nl.request(msg.hdr(), fmt::format("{} route {}", verb, r.str()));
}

Status neigh_request(Netlink &nl, uint16_t type, uint16_t flags, std::string_view dev, const IpAddress &a,
                     std::string_view verb) {
  auto link = BH_TRY(get_link(nl, dev));
  Message msg(type, flags);
  auto *ndm = msg.put_struct<ndmsg>();
  ndm->ndm_family = static_cast<uint8_t>(a.family);
  ndm->ndm_ifindex = link.index;
  ndm->ndm_state = NUD_PERMANENT;
  ndm->ndm_flags = NTF_PROXY;
  msg.put(NDA_DST, a.bytes.data(), a.size());
  return nl.request(msg.hdr(), fmt::format("{} proxy neighbour {} on {}", verb, a.str(), dev));
}

} // namespace

Route Route::default_via(const IpAddress &gw, std::string dev, bool onlink) {
  Route r;
  r.dst.addr = IpAddress{};
  r.dst.addr.family = gw.family;
  r.dst.prefix = 0;
  r.gateway = gw;
  r.dev = std::move(dev);
  r.onlink = onlink;
  return r;
}

Route Route::host(const IpAddress &a, std::string dev) {
  Route r;
  r.dst = Cidr::host(a);
  r.dev = std::move(dev);
  return r;
}

std::string Route::str() const {
  std::string s = dst.prefix == 0 ? std::string("default") : Cidr{dst.network(), dst.prefix}.str();
  if (gateway)
    s += " via " + gateway->str();
  if (!dev.empty())
    s += " dev " + dev;
  if (onlink)
    s += " onlink";
  return s;
}

Status add_route(Netlink &nl, const Route &r) {
  return route_request(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r, "adding");
}

Status ensure_route(Netlink &nl, const Route &r) {
  return route_request(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r, "setting");
}

Status delete_route(Netlink &nl, const Route &r) { return route_request(nl, RTM_DELROUTE, 0, r, "deleting"); }

Result<std::vector<Route>> list_routes(Netlink &nl, int family) {
  std::map<int, std::string> names;
  for (const auto &l : BH_TRY(list_links(nl)))
    names[l.index] = l.name;
  Message msg(RTM_GETROUTE, NLM_F_DUMP);
  msg.put_struct<rtmsg>()->rtm_family = static_cast<uint8_t>(family);
  std::vector<Route> out;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type != RTM_NEWROUTE)
          return {};
        const auto *rtm = static_cast<const rtmsg *>(mnl_nlmsg_get_payload(nlh));
        Attrs<RTA_MAX> a;
        a.parse_msg(nlh, sizeof *rtm);
        uint32_t table = a.u32(RTA_TABLE, rtm->rtm_table);
        if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST || rtm->rtm_family != family)
          return {};
        Route r;
        r.table = table;
        r.protocol = rtm->rtm_protocol;
        r.onlink = (rtm->rtm_flags & RTNH_F_ONLINK) != 0;
        r.dst.addr.family = rtm->rtm_family;
        r.dst.prefix = rtm->rtm_dst_len;
        if (a[RTA_DST])
          r.dst.addr = IpAddress::from_bytes(rtm->rtm_family, mnl_attr_get_payload(a[RTA_DST]));
        if (a[RTA_GATEWAY])
          r.gateway = IpAddress::from_bytes(rtm->rtm_family, mnl_attr_get_payload(a[RTA_GATEWAY]));
        if (a[RTA_OIF])
          r.dev = names[static_cast<int>(a.u32(RTA_OIF))];
        r.metric = a.u32(RTA_PRIORITY);
        out.push_back(r);
        return {};
      },
      family == AF_INET ? "listing IPv4 routes" : "listing IPv6 routes"));
  return out;
}

Status ensure_proxy_neighbour(Netlink &nl, std::string_view dev, const IpAddress &a) {
  return neigh_request(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, dev, a, "adding");
}

Status delete_proxy_neighbour(Netlink &nl, std::string_view dev, const IpAddress &a) {
  return neigh_request(nl, RTM_DELNEIGH, 0, dev, a, "deleting");
}

} // namespace bulkhead::net
