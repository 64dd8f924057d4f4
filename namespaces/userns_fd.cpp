#include "namespaces/userns_fd.hpp"

#include <fcntl.h>
#include <sched.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "namespaces/namespace_holder.hpp"

namespace bulkhead::ns {

Result<UniqueFd> userns_with_maps(const std::string &uid_map, const std::string &gid_map) {
  NamespaceHolder holder = BH_TRY(
      context(NamespaceHolder::spawn(CLONE_NEWUSER, "user"), "a user namespace for an id-mapped mount"));
  // Root of the parent namespace writes any number of ranges: no newuidmap, no setgroups "deny".
  for (auto [file, map] : {std::pair{"uid_map", &uid_map}, std::pair{"gid_map", &gid_map}}) {
    std::string path = fmt::format("/proc/{}/{}", holder.pid(), file);
    BH_CHECK(context(write_file_at(AT_FDCWD, path, *map, O_WRONLY), "writing " + path));
  }
  return holder.take_fd();
}

} // namespace bulkhead::ns
