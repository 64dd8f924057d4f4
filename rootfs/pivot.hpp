// Switching the container's root: pivot_root (default) or MS_MOVE + chroot (--no-pivot, for
// ramdisk roots where pivot_root is impossible).
#pragma once

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

Status enter_root(int root_fd, bool no_pivot);

} // namespace bulkhead::rootfs
