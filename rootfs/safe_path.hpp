// Every path inside a container rootfs is resolved by the kernel with openat2(RESOLVE_IN_ROOT):
// "..", absolute symlinks and relative symlinks all stay below the rootfs, so an image can never make
// bulkhead touch a host path. Magic links (/proc/self/fd/N, /proc/self/root) are refused too.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::rootfs {

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags);

// Creates every missing directory of `path` (mkdir -p), each component resolved inside the root.
// Returns an O_PATH fd of the final directory.
Result<UniqueFd> mkdir_all_in_root(int root_fd, std::string_view path, mode_t mode = 0755);

enum class TargetKind { Directory, File };

// Makes sure a mount point exists (directory or empty regular file) and returns an O_PATH fd of it,
// resolved inside the root: the fd mounts are made on.
Result<UniqueFd> ensure_mount_target(int root_fd, std::string_view path, TargetKind kind);

// "/proc/self/fd/N": lets the classic mount(2) act on an fd the kernel already resolved.
std::string fd_path(int fd);

// Splits "/a/b/c" into ("/a/b", "c"); "/" yields ("/", "").
std::pair<std::string, std::string> split_parent(std::string_view path);

} // namespace bulkhead::rootfs
