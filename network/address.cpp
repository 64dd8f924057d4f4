#include "network/address.hpp"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "network/link.hpp"
#include "network/message.hpp"

namespace bulkhead::net {
namespace {

Status address_request(Netlink &nl, uint16_t type, uint16_t flags, std::string_view dev, const Cidr &cidr,
                       const AddressOptions &opts, std::string_view verb) {
  auto link = BH_TRY(get_link(nl, dev));
  Message msg(type, flags);
  auto *ifa = msg.put_struct<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(cidr.family());
  ifa->ifa_prefixlen = static_cast<uint8_t>(cidr.prefix);
  ifa->ifa_index = static_cast<uint32_t>(link.index);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  const auto &a = cidr.addr;
  if (a.is_v4()) {
    msg.put(IFA_LOCAL, a.bytes.data(), 4);
    msg.put(IFA_ADDRESS, a.bytes.data(), 4);
    if (type == RTM_NEWADDR && cidr.prefix < 31)
      msg.put(IFA_BROADCAST, cidr.last().bytes.data(), 4);
  } else {
    msg.put(IFA_ADDRESS, a.bytes.data(), 16);
    if (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80)
      ifa->ifa_scope = RT_SCOPE_LINK;
  }
  if (opts.nodad && type == RTM_NEWADDR)
    msg.put_u32(IFA_FLAGS, IFA_F_NODAD);
  return nl.request(msg.hdr(), fmt::format("{} address {} on {}", verb, cidr.str(), dev));
}

} // namespace

Status add_address(Netlink &nl, std::string_view dev, const Cidr &cidr, const AddressOptions &opts) {
  return address_request(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, dev, cidr, opts, "adding");
}

Status ensure_address(Netlink &nl, std::string_view dev, const Cidr &cidr, const AddressOptions &opts) {
  return address_request(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, dev, cidr, opts, "setting");
}

Status delete_address(Netlink &nl, std::string_view dev, const Cidr &cidr) {
  return address_request(nl, RTM_DELADDR, 0, dev, cidr, {}, "deleting");
}

Result<std::vector<AddressEntry>> list_addresses(Netlink &nl, std::string_view dev, int family) {
  int index = 0;
  if (!dev.empty())
    index = BH_TRY(get_link(nl, dev)).index;
  Message msg(RTM_GETADDR, NLM_F_DUMP);
  msg.put_struct<ifaddrmsg>()->ifa_family = static_cast<uint8_t>(family);
  std::vector<AddressEntry> out;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type != RTM_NEWADDR)
          return {};
        const auto *ifa = static_cast<const ifaddrmsg *>(mnl_nlmsg_get_payload(nlh));
        if (index && static_cast<int>(ifa->ifa_index) != index)
          return {};
        if (family != AF_UNSPEC && ifa->ifa_family != family)
          return {};
        Attrs<IFA_MAX> a;
        a.parse_msg(nlh, sizeof *ifa);
        const nlattr *at = a[IFA_LOCAL] ? a[IFA_LOCAL] : a[IFA_ADDRESS];
        if (!at || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
          return {};
        AddressEntry e;
        e.index = static_cast<int>(ifa->ifa_index);
        e.cidr.addr = IpAddress::from_bytes(ifa->ifa_family, mnl_attr_get_payload(at));
        e.cidr.prefix = ifa->ifa_prefixlen;
        out.push_back(e);
        return {};
      },
      dev.empty() ? std::string("listing addresses") : fmt::format("listing addresses of {}", dev)));
  return out;
}

} // namespace bulkhead::net
