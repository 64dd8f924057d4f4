#include "namespaces/mountinfo.hpp"

#include <sstream>
#include <sys/sysmacros.h>

#include "bulkhead/io.hpp"

namespace bulkhead::ns {

std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    bool octal = field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3';
    for (size_t k = 2; octal && k <= 3; ++k)
      octal = field[i + k] >= '0' && field[i + k] <= '7';
    if (octal) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root mount_point options [optional fields...] - fstype source super_options
    std::istringstream f(line);
    MountInfo m;
    std::string devs, root, point, word;
    if (!(f >> m.id >> m.parent >> devs >> root >> point >> m.mount_options))
      continue;
    unsigned major = 0, minor = 0;
    if (std::sscanf(devs.c_str(), "%u:%u", &major, &minor) != 2)
      continue;
    m.dev = makedev(major, minor);
    bool dash = false;
    while (f >> word)
      if ((dash = word == "-"))
        break;
    std::string source;
    if (!dash || !(f >> m.fstype >> source))
      continue;
    f >> m.super_options;
    m.root = unescape_mountinfo(root);
    m.mount_point = unescape_mountinfo(point);
    m.source = unescape_mountinfo(source);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MountInfo>> read_mountinfo(pid_t pid) {
  std::string path = pid > 0 ? fmt::format("/proc/{}/mountinfo", pid) : "/proc/self/mountinfo";
  return parse_mountinfo(BH_TRY(read_file(path)));
}

} // namespace bulkhead::ns
