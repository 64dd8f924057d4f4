#include "network/announce.hpp"

#include <arpa/inet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include <fmt/core.h>

#include "bulkhead/unique_fd.hpp"
#include "network/link.hpp"

namespace bulkhead::net {

namespace {

// An ARP request whose sender and target are both `addr`, broadcast: what Linux calls a gratuitous
// ARP (arp_is_garp) and takes to override a cached entry at once. A request rather than a reply:
// every stack accepts it, and it asks nobody to answer.
Status send_garp(int ifindex, const std::array<uint8_t, 6> &mac, const IpAddress &addr) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd)
    return failf_errno("gratuitous ARP for {}: packet socket", addr.str());
  std::array<uint8_t, sizeof(arphdr) + 20> pkt{};
  arphdr h{};
  h.ar_hrd = htons(ARPHRD_ETHER);
  h.ar_pro = htons(ETH_P_IP);
  h.ar_hln = 6;
  h.ar_pln = 4;
  h.ar_op = htons(ARPOP_REQUEST);
  std::memcpy(pkt.data(), &h, sizeof h);
  uint8_t *body = pkt.data() + sizeof h; // sender MAC, sender IP, target MAC (zero), target IP
  std::memcpy(body, mac.data(), 6);
  std::memcpy(body + 6, addr.bytes.data(), 4);
  std::memcpy(body + 16, addr.bytes.data(), 4);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  if (::sendto(fd.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof to) < 0)
    return failf_errno("gratuitous ARP for {} on link {}", addr.str(), ifindex);
  return {};
}

// An unsolicited Neighbor Advertisement to all nodes, Override set, with the target link-layer
// address option. Hop limit 255 is required (receivers drop anything else as not on-link); the
// kernel fills in the ICMPv6 checksum and picks the link's source address.
Status send_unsolicited_na(int ifindex, const std::array<uint8_t, 6> &mac, const IpAddress &addr) {
  UniqueFd fd(::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
  if (!fd)
    return failf_errno("neighbor advertisement for {}: ICMPv6 socket", addr.str());
  int hops = 255;
  if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0 ||
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex) < 0)
    return failf_errno("neighbor advertisement for {}: socket options", addr.str());
  std::array<uint8_t, sizeof(nd_neighbor_advert) + 8> pkt{};
  nd_neighbor_advert na{};
  na.nd_na_type = ND_NEIGHBOR_ADVERT;
  na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  std::memcpy(&na.nd_na_target, addr.bytes.data(), 16);
  std::memcpy(pkt.data(), &na, sizeof na);
  uint8_t *opt = pkt.data() + sizeof na;
  opt[0] = ND_OPT_TARGET_LINKADDR;
  opt[1] = 1; // length in units of 8 bytes
  std::memcpy(opt + 2, mac.data(), 6);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (::sendto(fd.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof to) < 0)
    return failf_errno("neighbor advertisement for {} on link {}", addr.str(), ifindex);
  return {};
}

} // namespace

Status announce_address(int ifindex, std::string_view mac, const IpAddress &addr) {
  auto hw = BH_TRY(parse_mac(mac));
  return addr.is_v4() ? send_garp(ifindex, hw, addr) : send_unsolicited_na(ifindex, hw, addr);
}

} // namespace bulkhead::net
