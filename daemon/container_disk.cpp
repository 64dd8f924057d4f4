#include "daemon/container_disk.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/core.h>

#include "storage/loop_image.hpp"

namespace bulkhead::daemon {

namespace {

Status make_dirs(const ContainerPaths &paths) {
  for (const auto &[dir, mode] : {std::pair{paths.upper, 0755}, {paths.work, 0700}})
    if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) < 0)
      return failf_errno("creating {}", dir);
  return {};
}

// Bytes allocated (st_blocks) and inodes in a tree, without following symlinks or crossing mounts.
// A missing top is an error, not an empty tree: a container whose upper vanished must not look
// like one that wrote nothing.
Result<DiskUsage> walk_usage(const std::string &top) {
  namespace fs = std::filesystem;
  DiskUsage u;
  struct stat root {};
  if (::lstat(top.c_str(), &root) < 0)
    return failf_errno("measuring the disk usage of {}", top);
  u.bytes = static_cast<uint64_t>(root.st_blocks) * 512;
  u.inodes = 1;
  std::error_code ec;
  fs::recursive_directory_iterator it(top, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) < 0)
      continue;
    if (st.st_dev != root.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    ++u.inodes;
  }
  return u;
}

class DirDisk final : public ContainerDisk {
public:
  Status create(const ContainerPaths &paths, const DiskLimits &limits) const override {
    if (limits.bytes || limits.inodes)
      return fail("a disk limit needs a storage backend with quotas: this bulkheadd runs with --storage dir "
                  "(start it with --storage ext4)",
                  EINVAL);
    if (::mkdir(paths.disk.c_str(), 0700) < 0)
      return failf_errno("creating {}", paths.disk);
    if (auto r = make_dirs(paths); !r) {
      ::rmdir(paths.upper.c_str());
      ::rmdir(paths.disk.c_str());
      return r;
    }
    return {};
  }
  Status attach(const ContainerPaths &) const override { return {}; }
  Status resize(const ContainerPaths &paths, uint64_t) const override {
    return fail(fmt::format("{}: this container uses the storage backend \"dir\", which has no disk quota",
                            paths.dir),
                EINVAL);
  }
  Result<DiskUsage> usage(const ContainerPaths &paths) const override { return walk_usage(paths.upper); }
  Status detach(const ContainerPaths &) const override { return {}; }
};

class Ext4Disk final : public ContainerDisk {
public:
  Status create(const ContainerPaths &paths, const DiskLimits &limits) const override {
    if (!limits.bytes)
      return fail("the ext4 storage backend needs a disk size", EINVAL);
    if (::mkdir(paths.disk.c_str(), 0700) < 0)
      return failf_errno("creating {}", paths.disk);
    auto undo = [&] {
      (void)storage::unmount_image(paths.disk);
      ::unlink(paths.disk_image.c_str());
      ::rmdir(paths.disk.c_str());
    };
    Status r = storage::make_ext4_image(paths.disk_image, *limits.bytes, limits.inodes);
    if (r)
      r = storage::attach_and_mount(paths.disk_image, paths.disk).map([](const std::string &) {});
    if (r)
      r = make_dirs(paths);
    if (!r)
      undo();
    return r;
  }

  Status attach(const ContainerPaths &paths) const override {
    if (storage::ext4_mounted(paths.disk)) {
      // Adopt the mount a previous daemon made, if it is ours.
      BH_TRY(storage::loop_device_of(paths.disk_image, paths.disk));
      return {};
    }
    BH_TRY(storage::attach_and_mount(paths.disk_image, paths.disk));
    return {};
  }

  Status resize(const ContainerPaths &paths, uint64_t bytes) const override {
    BH_CHECK(attach(paths));
    return storage::grow_mounted_image(paths.disk_image, paths.disk, bytes);
  }

  Result<DiskUsage> usage(const ContainerPaths &paths) const override {
    if (!storage::ext4_mounted(paths.disk))
      return fail("the disk image of " + paths.dir + " is not mounted", ENODEV);
    auto fs = BH_TRY(storage::fs_usage(paths.disk));
    return DiskUsage{fs.bytes_used, fs.inodes_used, fs.bytes_total, fs.inodes_total};
  }

  Status detach(const ContainerPaths &paths) const override {
    BH_CHECK(storage::unmount_image(paths.disk));
    if (::unlink(paths.disk_image.c_str()) < 0 && errno != ENOENT)
      return failf_errno("removing {}", paths.disk_image);
    return {};
  }
};

const DirDisk kDir;
const Ext4Disk kExt4;

} // namespace

Result<const ContainerDisk *> container_disk(const std::string &storage) {
  if (storage == "dir")
    return &kDir;
  if (storage == "ext4")
    return &kExt4;
  return fail("unknown storage backend \"" + storage + "\" (expected dir or ext4)", EINVAL);
}

Result<uint64_t> disk_bytes_field(const nlohmann::json &v) {
  uint64_t bytes = 0;
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    bytes = v.get<uint64_t>();
  else if (v.is_string()) {
    auto parsed = parse_size(v.get<std::string>());
    if (!parsed)
      return fail("\"disk\": " + parsed.error().message, EINVAL);
    bytes = *parsed;
  } else
    return fail("\"disk\" must be a size such as \"2G\" or a number of bytes", EINVAL);
  if (bytes < kMinDiskBytes)
    return fail(fmt::format("disk limit {} bytes is below the {} MiB minimum", bytes, kMinDiskBytes >> 20),
                EINVAL);
  return bytes;
}

Result<uint64_t> disk_inodes_field(const nlohmann::json &v) {
  if (!v.is_number_integer() || v.get<int64_t>() < 64 || v.get<int64_t>() > (int64_t{1} << 32) - 1)
    return fail("\"disk_inodes\" must be a whole number of files from 64 to 4294967295", EINVAL);
  return v.get<uint64_t>();
}

Result<DiskLimits> disk_limits_for_create(const std::string &storage, const nlohmann::json &req,
                                          uint64_t default_bytes) {
  DiskLimits l;
  if (req.contains("disk") && !req["disk"].is_null())
    l.bytes = BH_TRY(disk_bytes_field(req["disk"]));
  if (req.contains("disk_inodes") && !req["disk_inodes"].is_null())
    l.inodes = BH_TRY(disk_inodes_field(req["disk_inodes"]));
  if (storage == "dir" && (l.bytes || l.inodes))
    return fail(std::string("\"") + (l.bytes ? "disk" : "disk_inodes") +
                    "\" needs a storage backend with quotas: this bulkheadd runs with --storage dir "
                    "(start it with --storage ext4)",
                EINVAL);
  if (storage == "ext4" && !l.bytes)
    l.bytes = default_bytes;
  return l;
}

Status change_disk_limit(const ContainerConfig &c, const ContainerPaths &paths, uint64_t bytes) {
  const ContainerDisk *disk = BH_TRY(container_disk(c.storage));
  if (c.storage == "dir")
    return disk->resize(paths, bytes);
  BH_CHECK(disk->attach(paths)); // the usage below is the image's
  auto used = BH_TRY(disk->usage(paths));
  if (bytes < used.bytes)
    return fail(fmt::format("disk limit {} bytes is below the container's current disk usage of {} bytes",
                            bytes, used.bytes),
                EINVAL);
  if (c.disk.bytes && bytes < *c.disk.bytes)
    return fail(
        fmt::format("disk limit {} bytes is below the current limit of {} bytes: the ext4 backend grows "
                    "a disk but cannot shrink it",
                    bytes, *c.disk.bytes),
        EINVAL);
  return disk->resize(paths, bytes);
}

} // namespace bulkhead::daemon
