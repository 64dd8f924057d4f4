// linux.maskedPaths and linux.readonlyPaths, applied before pivot_root on paths resolved in the rootfs.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

// Directories get an empty read-only tmpfs, files the container's /dev/null (verified to be the
// real null device, so a hostile image cannot turn a mask into a bind of something else).
Status mask_paths(int root_fd, const std::vector<std::string> &paths);

// The mask of a directory: an empty read-only tmpfs on TARGET (a path, possibly /proc/self/fd/N).
Status mount_directory_mask(const std::string &target);

// Recursive read-only bind of each path onto itself.
Status readonly_paths(int root_fd, const std::vector<std::string> &paths);

} // namespace bulkhead::rootfs
