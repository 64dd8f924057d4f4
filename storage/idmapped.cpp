#include "storage/idmapped.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "namespaces/userns_fd.hpp"
#include "storage/mountinfo.hpp"

namespace bulkhead::storage {

namespace {

// The type of the filesystem `path` is on, as /proc/self/mountinfo names it (the longest mount
// point that is a prefix), for errors.
std::string fstype_of(const std::string &path) {
  std::string best, type = "unknown";
  for (const auto &m : read_mountinfo()) {
    const auto &mp = m.mount_point;
    bool prefix = path == mp || mp == "/" ||
                  (path.size() > mp.size() && path.compare(0, mp.size(), mp) == 0 && path[mp.size()] == '/');
    if (prefix && mp.size() >= best.size()) {
      best = mp;
      type = m.fstype;
    }
  }
  return type;
}

} // namespace

Result<UniqueFd> make_userns_fd(uint32_t uid, uint32_t gid, uint32_t size) {
  return context(
      ns::userns_with_maps(fmt::format("0 {} {}\n", uid, size), fmt::format("0 {} {}\n", gid, size)),
      "the container's id map");
}

Status mount_idmapped(const std::string &source, const std::string &target, int userns_fd) {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree)
    return failf_errno("open_tree(OPEN_TREE_CLONE) of {}", source);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
    int err = errno;
    return fail(
        fmt::format("{} cannot be idmapped: its filesystem ({}) or this kernel refuses "
                    "mount_setattr(MOUNT_ATTR_IDMAP); unprivileged containers need their templates on "
                    "a filesystem with idmapped mounts (ext4, xfs, btrfs, tmpfs from Linux 6.3, ...): "
                    "move bulkheadd's --root there, or create the container --privileged",
                    source, fstype_of(source)),
        err);
  }
  if (::mkdir(target.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", target);
  if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return failf_errno("move_mount of the idmapped {} to {}", source, target);
  return {};
}

} // namespace bulkhead::storage
