// The only procfs bulkhead writes to from inside the container's namespaces (CVE-2019-16884,
// CVE-2023-27561/28642, CVE-2025-52881): never the container's /proc, which the image or a racing
// mount can replace, but a fresh detached instance or the host's, each verified.
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "security/plan.hpp"

namespace bulkhead::security {

namespace {

constexpr ino_t kProcRootIno = 1;

Status verify_procfs_root(int fd) {
  struct statfs sfs {};
  if (::fstatfs(fd, &sfs) < 0)
    return failf_errno("procfs: fstatfs");
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return fail("procfs: /proc is not a procfs mount");
  struct stat st {};
  if (::fstat(fd, &st) < 0)
    return failf_errno("procfs: fstat");
  if (st.st_ino != kProcRootIno)
    return fail("procfs: /proc is not the root of a procfs mount");
  return {};
}

UniqueFd fresh_procfs() {
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC)));
  if (!fs)
    return {};
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    return {};
  return UniqueFd(static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC,
                                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)));
}

} // namespace

Result<UniqueFd> open_private_procfs() {
  // A detached mount no path reaches: nothing in the container can over-mount or swap it.
  if (UniqueFd fd = fresh_procfs(); fd && verify_procfs_root(fd.get()))
    return fd;
  // The kernel refuses a fresh procfs in some user namespaces (mount_too_revealing); the /proc this
  // mount namespace copied from the host is still out of the container's reach before pivot.
  UniqueFd fd(::open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return failf_errno("procfs: opening /proc");
  BH_CHECK(verify_procfs_root(fd.get()));
  return fd;
}

Status write_procfs(int proc_fd, const std::string &relative, std::string_view value) {
  struct open_how how {};
  how.flags = O_WRONLY | O_CLOEXEC | O_NOCTTY;
  // thread-self is an ordinary symlink inside procfs; magic links and other mounts are refused.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, proc_fd, relative.c_str(), &how, sizeof how)));
  if (!fd)
    return failf_errno("procfs: opening /proc/{}", relative);
  struct statfs sfs {};
  if (::fstatfs(fd.get(), &sfs) < 0)
    return failf_errno("procfs: fstatfs /proc/{}", relative);
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return failf("procfs: /proc/{} is not on procfs", relative);
  ssize_t n;
  while ((n = ::write(fd.get(), value.data(), value.size())) < 0 && errno == EINTR) {
  }
  if (n < 0)
    return failf_errno("procfs: writing /proc/{}", relative);
  if (static_cast<size_t>(n) != value.size())
    return failf("procfs: short write to /proc/{}", relative);
  return {};
}

} // namespace bulkhead::security
