#include "storage/mountinfo.hpp"

#include "namespaces/mountinfo.hpp"

namespace bulkhead::storage {

std::string unescape_mountinfo(std::string_view field) { return ns::unescape_mountinfo(field); }

std::vector<MountEntry> read_mountinfo() {
  std::vector<MountEntry> out;
  auto mounts = ns::read_mountinfo();
  if (mounts)
    for (auto &m : *mounts)
      out.push_back({std::move(m.mount_point), std::move(m.fstype)});
  return out;
}

} // namespace bulkhead::storage
