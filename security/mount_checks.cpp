// procfs and sysfs must be mounted on real directories of the rootfs: runc's CVE-2019-16884,
// CVE-2023-27561 and CVE-2023-28642 all began with an image whose /proc was a symlink, so that
// masks and labels meant for /proc landed somewhere else.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "security/plan.hpp"

namespace bulkhead::security {

Status check_special_mount_destinations(int root_fd, const oci::Spec &spec) {
  for (const auto &m : spec.mounts) {
    if (m.type != "proc" && m.type != "sysfs")
      continue;
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root_fd, m.destination.c_str(), &how, sizeof how)));
    if (!fd && errno == ELOOP)
      return failf("mount {} on {}: the destination is (or goes through) a symlink in the rootfs", m.type,
                   m.destination);
  }
  return {};
}

} // namespace bulkhead::security
