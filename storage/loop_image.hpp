// A per-container ext4 image behind a loop device (the idea of OpenVZ's ploop): a sparse file,
// formatted with mkfs.ext4 (run through posix_spawn), attached with LOOP_CONFIGURE and
// LO_FLAGS_AUTOCLEAR and mounted in the caller's mount namespace. Its size is a hard limit on the
// bytes written into it and its inode count a hard limit on the files. Because of autoclear, the
// loop device lives exactly as long as the mount: unmounting is the whole teardown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

struct FsUsage {
  uint64_t bytes_total = 0, bytes_used = 0; // statfs blocks (ext4 already leaves out its metadata)
  uint64_t inodes_total = 0, inodes_used = 0;
};

// Creates `image` (O_EXCL: never reuses a file) as a sparse file of `bytes` and formats it as
// ext4 with no reserved blocks and, when given, room for about `inodes` files. On failure the
// file is gone again.
Status make_ext4_image(const std::string &image, uint64_t bytes, std::optional<uint64_t> inodes);

// Whether an ext4 filesystem is mounted exactly at `mount_point` (in this mount namespace).
bool ext4_mounted(const std::string &mount_point);

// Attaches `image` to a free loop device (autoclear) and mounts it at `mount_point`. Returns the
// device's path. On failure nothing is left attached or mounted.
Result<std::string> attach_and_mount(const std::string &image, const std::string &mount_point);

// The loop device mounted at `mount_point`, checked to be backed by `image` (so a daemon that
// re-adopts a mount never takes someone else's).
Result<std::string> loop_device_of(const std::string &image, const std::string &mount_point);

// Grows the mounted image to `bytes` online: the file, then the loop device's capacity
// (LOOP_SET_CAPACITY), then the filesystem (EXT4_IOC_RESIZE_FS). Shrinking is refused.
Status grow_mounted_image(const std::string &image, const std::string &mount_point, uint64_t bytes);

// Unmounts `mount_point` (autoclear then detaches the loop device). Not mounted: nothing to do.
Status unmount_image(const std::string &mount_point);

Result<FsUsage> fs_usage(const std::string &mount_point);
Result<uint64_t> file_size(const std::string &path);

} // namespace bulkhead::storage
