#include "rootfs/masks.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "rootfs/safe_path.hpp"

namespace bulkhead::rootfs {

namespace {

Result<UniqueFd> open_null_device(int root_fd) {
  UniqueFd fd = BH_TRY(context(open_in_root(root_fd, "/dev/null", O_PATH), "masking paths"));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0)
    return failf_errno("stat /dev/null");
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    return failf("masking paths: /dev/null in the container is not the null device");
  return fd;
}

} // namespace

Status mount_directory_mask(const std::string &target) {
  if (::mount("tmpfs", target.c_str(), "tmpfs", MS_RDONLY, "size=0k") < 0)
    return failf_errno("mounting an empty read-only tmpfs on {}", target);
  return {};
}

Status mask_paths(int root_fd, const std::vector<std::string> &paths) {
  UniqueFd null_fd;
  for (const auto &p : paths) {
    auto target = open_in_root(root_fd, p, O_PATH);
    if (!target) {
      if (target.error().code == ENOENT)
        continue;
      return tl::unexpected(with_context(target.error(), "masking " + p));
    }
    struct stat st {};
    if (::fstat(target->get(), &st) < 0)
      return failf_errno("masking {}: stat", p);
    if (S_ISDIR(st.st_mode)) {
      BH_CHECK(context(mount_directory_mask(fd_path(target->get())), "masking " + p));
      continue;
    }
    if (!null_fd)
      null_fd = BH_TRY(open_null_device(root_fd));
    if (::mount(fd_path(null_fd.get()).c_str(), fd_path(target->get()).c_str(), nullptr, MS_BIND, nullptr) <
        0)
      return failf_errno("masking {}", p);
  }
  return {};
}

Status readonly_paths(int root_fd, const std::vector<std::string> &paths) {
  for (const auto &p : paths) {
    auto target = open_in_root(root_fd, p, O_PATH);
    if (!target) {
      if (target.error().code == ENOENT)
        continue;
      return tl::unexpected(with_context(target.error(), "read-only path " + p));
    }
    auto path = fd_path(target->get());
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return failf_errno("read-only path {}: bind", p);
    UniqueFd top = BH_TRY(open_in_root(root_fd, p, O_PATH));
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::syscall(SYS_mount_setattr, top.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      return failf_errno("read-only path {}: remount", p);
  }
  return {};
}

} // namespace bulkhead::rootfs
