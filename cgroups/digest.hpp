// SHA-1 and SHA-256 (FIPS 180-4), only to recompute the tag the kernel gives an eBPF program:
// the first 8 bytes of a digest of its instructions (SHA-1 up to Linux 6.17, SHA-256 since).
// The device-filter cache checks a pinned program against it (see device_filter.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace bulkhead::cgroups {

std::array<uint8_t, 20> sha1(std::string_view data);
std::array<uint8_t, 32> sha256(std::string_view data);

} // namespace bulkhead::cgroups
