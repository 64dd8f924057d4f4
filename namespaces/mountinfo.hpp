// A mount namespace's table as the kernel writes it (/proc/PID/mountinfo), parsed once here for
// every reader: the runtime's pivot and checkpoint, the storage's overlays and loop images.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::ns {

struct MountInfo {
  int id = 0, parent = 0;
  dev_t dev = 0;
  std::string root;          // the mount's root within its filesystem
  std::string mount_point;   // relative to the reader's root; unescaped
  std::string mount_options; // per mount: "rw,nosuid,nodev,relatime"
  std::string fstype;
  std::string source;
  std::string super_options; // the filesystem's: "rw,size=65536k,mode=755,inode64"
};

// mountinfo writes ' ', '\t', '\n' and '\\' in paths as octal escapes (\040).
std::string unescape_mountinfo(std::string_view field);

// In mount order; malformed lines are skipped.
std::vector<MountInfo> parse_mountinfo(std::string_view text);

// /proc/PID/mountinfo (pid 0: /proc/self/mountinfo), paths as that process sees them.
Result<std::vector<MountInfo>> read_mountinfo(pid_t pid = 0);

} // namespace bulkhead::ns
