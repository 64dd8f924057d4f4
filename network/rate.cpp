#include <charconv>
#include <cmath>
#include <utility>

#include "network/tc.hpp"

namespace bulkhead::net {

Result<Rate> Rate::parse(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || v <= 0 || !std::isfinite(v))
    return failf("rate '{}' does not parse: a positive number and a unit (10mbit, 500kbit, 1gbit)", text);
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  static constexpr std::pair<std::string_view, double> units[] = {
      {"", 1},        {"bit", 1},        {"kbit", 1e3},        {"mbit", 1e6},           {"gbit", 1e9},
      {"tbit", 1e12}, {"kibit", 1024.0}, {"mibit", 1048576.0}, {"gibit", 1073741824.0}, {"bps", 8},
      {"kbps", 8e3},  {"mbps", 8e6},     {"gbps", 8e9},        {"kibps", 8192.0},       {"mibps", 8388608.0}};
  for (const auto &[name, factor] : units) {
    if (unit == name) {
      double bits = v * factor;
      if (bits < 8 || bits > 1e15)
        return failf("rate '{}' is out of range (8bit .. 1000tbit)", text);
      return Rate{static_cast<uint64_t>(bits)};
    }
  }
  return failf("rate '{}' has an unknown unit '{}' (bit, kbit, mbit, gbit, bps, kbps, mbps, ...)", text,
               unit);
}

std::string Rate::str() const {
  uint64_t b = bits_per_second;
  if (b % 1000000000 == 0)
    return std::to_string(b / 1000000000) + "gbit";
  if (b % 1000000 == 0)
    return std::to_string(b / 1000000) + "mbit";
  if (b % 1000 == 0)
    return std::to_string(b / 1000) + "kbit";
  return std::to_string(b) + "bit";
}

} // namespace bulkhead::net
