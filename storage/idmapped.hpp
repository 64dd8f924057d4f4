// Idmapped mounts for unprivileged system containers (docs/unprivileged.md): the shared template is
// seen by a container through a mount that shifts its ids into the container's range, so the one
// copy on disk stays owned by 0 while root inside (the range's base uid on the host) owns it.
#pragma once

#include <cstdint>
#include <string>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

// A user namespace mapping ids 0..size-1 to uid..uid+size-1 (gid..gid+size-1), held by the
// returned fd alone: made by a short-lived child (this process must be single-threaded or
// fork-safe, as bulkhead-monitor is).
Result<UniqueFd> make_userns_fd(uint32_t uid, uint32_t gid, uint32_t size);

// Mounts a clone of `source` on `target` (made 0700 if missing) with the ids of userns_fd
// (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount). A filesystem that
// cannot be idmapped is an error naming it, its type and the kernel's answer.
Status mount_idmapped(const std::string &source, const std::string &target, int userns_fd);

} // namespace bulkhead::storage
