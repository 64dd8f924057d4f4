#include "rootfs/pivot.hpp"

#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bulkhead::rootfs {

Status enter_root(int root_fd, bool no_pivot) {
  if (::fchdir(root_fd) < 0)
    return failf_errno("entering the rootfs");
  if (no_pivot) {
    if (::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0)
      return failf_errno("moving the rootfs to /");
    if (::chroot(".") < 0)
      return failf_errno("chroot into the rootfs");
  } else {
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
    // the container's tree, with no directory needed for the old root.
    if (::syscall(SYS_pivot_root, ".", ".") < 0)
      return failf_errno("pivot_root into the rootfs");
    // Keep the unmount of the old root from propagating to the host.
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0)
      return failf_errno("making the old root a slave");
    if (::umount2(".", MNT_DETACH) < 0)
      return failf_errno("detaching the old root");
  }
  if (::chdir("/") < 0)
    return failf_errno("chdir / in the new root");
  return {};
}

} // namespace bulkhead::rootfs
