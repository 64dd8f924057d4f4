// Storage backends: where a container's upper and work directories live and what bounds them.
//   dir:  plain directories under the container's directory; no quota (usage is a tree walk).
//   ext4: a sparse ext4 image per container (storage/loop_image.hpp) loop-mounted at
//         ContainerPaths::disk, holding upper and work; its size and inode count are the hard
//         limits. The template stays the shared overlay lower in both.
// The image is mounted in the host's mount namespace for the container's whole life (stopped or
// running), so it outlives a killed daemon; a new daemon adopts the mount it finds (attach()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "daemon/record_store.hpp"

namespace bulkhead::daemon {

// Below this an ext4 image has no room left after its journal and metadata.
constexpr uint64_t kMinDiskBytes = 16u << 20;

struct DiskUsage {
  uint64_t bytes = 0, inodes = 0;
  uint64_t bytes_total = 0, inodes_total = 0; // the backend's hard limits; 0 = none
};

class ContainerDisk {
public:
  virtual ~ContainerDisk() = default;
  // Makes paths.disk with upper and work in it, bounded by `limits`. On failure nothing is left.
  virtual Status create(const ContainerPaths &paths, const DiskLimits &limits) const = 0;
  // Makes upper and work reachable (ext4: mounts the image unless it is mounted already).
  virtual Status attach(const ContainerPaths &paths) const = 0;
  // Changes the byte limit (online; ext4 only grows).
  virtual Status resize(const ContainerPaths &paths, uint64_t bytes) const = 0;
  virtual Result<DiskUsage> usage(const ContainerPaths &paths) const = 0;
  // Undoes attach(), before the container's directory is removed.
  virtual Status detach(const ContainerPaths &paths) const = 0;
};

// The backend named "dir" or "ext4"; an unknown name is an error naming the known ones.
Result<const ContainerDisk *> container_disk(const std::string &storage);

// API values: "disk" is a size ("2G") or a number of bytes; "disk_inodes" a whole number.
Result<uint64_t> disk_bytes_field(const nlohmann::json &v);
Result<uint64_t> disk_inodes_field(const nlohmann::json &v);

// The limits a create asks for, checked against the backend: a limit with "dir" is refused.
Result<DiskLimits> disk_limits_for_create(const std::string &storage, const nlohmann::json &request,
                                          uint64_t default_bytes);

// set --disk: refused below the current usage, with "dir", and (ext4) below the current size.
Status change_disk_limit(const ContainerConfig &config, const ContainerPaths &paths, uint64_t bytes);

} // namespace bulkhead::daemon
