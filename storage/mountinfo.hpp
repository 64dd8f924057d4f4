// /proc/self/mountinfo, parsed: which filesystem is mounted where.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::storage {

struct MountEntry {
  std::string mount_point; // unescaped (mountinfo writes ' ', '\t', '\n', '\\' as octal escapes)
  std::string fstype;
};

// In mount order; empty if /proc is unavailable.
std::vector<MountEntry> read_mountinfo();

std::string unescape_mountinfo(std::string_view field);

} // namespace bulkhead::storage
