#include "network/ip.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace bulkhead::net {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    a.family = AF_INET6;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1)
      return a;
  } else if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    return a;
  }
  return failf("'{}' is not an IPv4 or IPv6 address", text);
}

IpAddress IpAddress::from_bytes(int family, const void *data) {
  IpAddress a;
  a.family = family;
  std::memcpy(a.bytes.data(), data, a.size());
  return a;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpAddress::plus(uint64_t n) const {
  IpAddress out = *this;
  unsigned carry = 0;
  for (size_t i = size(); i-- > 0;) {
    unsigned v = out.bytes[i] + static_cast<unsigned>(n & 0xff) + carry;
    out.bytes[i] = static_cast<uint8_t>(v);
    carry = v >> 8;
    n >>= 8;
  }
  return out;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  Cidr c;
  c.addr = BH_TRY(IpAddress::parse(text.substr(0, slash)));
  c.prefix = c.max_prefix();
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    int v = -1;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || v < 0 || v > c.max_prefix())
      return failf("'{}': prefix length must be 0..{}", text, c.max_prefix());
    c.prefix = v;
  }
  return c;
}

static IpAddress masked(const Cidr &c, bool set_host) {
  IpAddress out = c.addr;
  for (size_t i = 0; i < out.size(); i++) {
    int bits = static_cast<int>(i) * 8;
    int keep = c.prefix - bits; // network bits in this byte
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    out.bytes[i] =
        set_host ? static_cast<uint8_t>(out.bytes[i] | ~mask) : static_cast<uint8_t>(out.bytes[i] & mask);
  }
  return out;
}

IpAddress Cidr::network() const { return masked(*this, false); }
IpAddress Cidr::last() const { return masked(*this, true); }

bool Cidr::contains(const IpAddress &a) const {
  return a.family == family() && masked(Cidr{a, prefix}, false) == network();
}

bool Cidr::overlaps(const Cidr &o) const {
  if (o.family() != family())
    return false;
  return prefix <= o.prefix ? contains(o.addr) : o.contains(addr);
}

} // namespace bulkhead::net
