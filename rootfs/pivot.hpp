// Switching the container's root: pivot_root (default) or MS_MOVE + chroot (--no-pivot, for
// ramdisk roots where pivot_root is impossible).
#pragma once

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

Status enter_root(int root_fd, bool no_pivot);

// chroot into `root_fd` and chdir "/": for a container sharing the runtime's mount namespace (and
// for exec into one), where nothing may be moved or pivoted.
Status chroot_into(int root_fd);

} // namespace bulkhead::rootfs
