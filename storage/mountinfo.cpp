#include "storage/mountinfo.hpp"

#include <fstream>
#include <sstream>

namespace bulkhead::storage {

std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3' &&
        field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
      int v = (field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0');
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<MountEntry> read_mountinfo() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::istringstream ls(line);
    std::string id, parent, devs, root, mp, opts, field;
    if (!(ls >> id >> parent >> devs >> root >> mp >> opts))
      continue;
    while (ls >> field && field != "-") {
    }
    std::string fstype;
    ls >> fstype;
    out.push_back({unescape_mountinfo(mp), fstype});
  }
  return out;
}

} // namespace bulkhead::storage
