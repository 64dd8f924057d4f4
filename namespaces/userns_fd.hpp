// A user namespace with given id maps, held only by a file descriptor: what
// mount_setattr(MOUNT_ATTR_IDMAP) takes to shift the ids of a mount (OCI idmapped mounts,
// bulkheadd's unprivileged templates).
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::ns {

// uid_map/gid_map: the kernel's text ("0 100000 65536\n..."), written by this process, which must
// be root in its own user namespace. Made by a short-lived child that unshares and waits to be
// killed, so this process must be single-threaded or fork-safe (the runtime's create, the
// monitor); the child is reaped before returning.
Result<UniqueFd> userns_with_maps(const std::string &uid_map, const std::string &gid_map);

} // namespace bulkhead::ns
