// IPv4/IPv6 addresses and prefixes (CIDR): parsing, printing, arithmetic for the allocator.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/socket.h>

#include "bulkhead/result.hpp"

namespace bulkhead::net {

struct IpAddress {
  int family = AF_INET;            // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{}; // network order; IPv4 uses the first 4

  static Result<IpAddress> parse(std::string_view text);
  static IpAddress from_bytes(int family, const void *data);
  size_t size() const { return family == AF_INET ? 4 : 16; }
  bool is_v4() const { return family == AF_INET; }
  std::string str() const;
  // this + n, wrapping inside the family's width; used to walk a subnet.
  IpAddress plus(uint64_t n) const;
  auto operator<=>(const IpAddress &) const = default;
};

struct Cidr {
  IpAddress addr; // host part kept: "198.18.77.1/24" is the bridge's address in its subnet
  int prefix = 32;

  static Result<Cidr> parse(std::string_view text); // "198.18.0.1/24", "fd00::1/64"; no "/" = host
  static Cidr host(const IpAddress &a) { return Cidr{a, a.is_v4() ? 32 : 128}; }
  int family() const { return addr.family; }
  int max_prefix() const { return addr.is_v4() ? 32 : 128; }
  IpAddress network() const; // host bits cleared
  IpAddress last() const;    // host bits set (IPv4 broadcast)
  bool contains(const IpAddress &a) const;
  bool overlaps(const Cidr &o) const;
  std::string str() const { return addr.str() + "/" + std::to_string(prefix); }
  auto operator<=>(const Cidr &) const = default;
};

} // namespace bulkhead::net
