#include "rootfs/pivot.hpp"

#include <climits>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "bulkhead/io.hpp"
#include "namespaces/mountinfo.hpp"
#include "rootfs/safe_path.hpp"

namespace bulkhead::rootfs {

namespace {

// Mount points of whole procfs and sysfs instances outside the rootfs.
Result<std::vector<std::string>> host_proc_and_sys_mounts(const std::string &rootfs) {
  std::vector<std::string> out;
  for (const auto &m : BH_TRY(ns::read_mountinfo())) {
    const std::string &point = m.mount_point;
    if (m.root != "/" || (m.fstype != "proc" && m.fstype != "sysfs"))
      continue;
    if (point == rootfs || point.starts_with(rootfs + "/"))
      continue;
    out.push_back(point);
  }
  return out;
}

// With chroot the host's own /proc and /sys stay reachable in the mount namespace (under the moved
// rootfs), and the kernel lets a process mount a fresh procfs or sysfs when an unmasked instance is
// visible there: detach them first (or cover them with a tmpfs when that is refused), as runc does.
Status hide_host_proc_and_sys(const std::string &rootfs) {
  for (const auto &point : BH_TRY(host_proc_and_sys_mounts(rootfs))) {
    // Keep the unmount from propagating to the host.
    if (::mount(nullptr, point.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) < 0) {
      if (errno == ENOENT)
        continue;
      return failf_errno("--no-pivot: making {} a slave before hiding it", point);
    }
    if (::umount2(point.c_str(), MNT_DETACH) == 0)
      continue;
    if (errno != EINVAL && errno != EPERM)
      return failf_errno("--no-pivot: detaching the host's {}", point);
    if (::mount("tmpfs", point.c_str(), "tmpfs", 0, nullptr) < 0)
      return failf_errno("--no-pivot: covering the host's {}", point);
  }
  return {};
}

} // namespace

Status chroot_into(int root_fd) {
  if (::fchdir(root_fd) < 0)
    return failf_errno("entering the rootfs");
  if (::chroot(".") < 0)
    return failf_errno("chroot into the rootfs");
  if (::chdir("/") < 0)
    return failf_errno("chdir / in the new root");
  return {};
}

Status enter_root(int root_fd, bool no_pivot) {
  if (::fchdir(root_fd) < 0)
    return failf_errno("entering the rootfs");
  if (no_pivot) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(fd_path(root_fd).c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof buf)
      return failf_errno("--no-pivot: resolving the rootfs path");
    BH_CHECK(hide_host_proc_and_sys(std::string(buf, static_cast<size_t>(n))));
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
