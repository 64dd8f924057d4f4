// bulkheadd's checkpoints carry a container's tmpfs mounts (the spec's /dev, /dev/shm, /run) past
// CRIU. CRIU 3.17 archives each tmpfs with `tar --create --gzip` at the dump and unpacks it with
// tar at the restore: two program starts per mount, all inside the container's freeze (1.3 s of a
// 2.2 s dump in the TCG test bed, for three mounts of a few KB). Instead, during the same freeze,
// the runtime copies each one in-process into the images directory (rootfs/tree_archive.hpp) and
// tells CRIU it is an external mount; the restore mounts a tmpfs per archive with the options the
// original had, fills it from a process in the container's cgroup (its pages are charged to the
// container, as the originals were) and hands it to CRIU to bind in place.
//
// In the images directory (regular files, so replication and migration carry them as they are):
//   bulkhead-tmpfs.json    {"version":1,"mounts":[{"destination":"/run","key":"bulkhead-tmpfs-0",
//                           "options":"size=...,mode=755","flags":["nosuid","nodev","relatime"]}]}
//   bulkhead-tmpfs-N.tree  the Nth mount's files (key + ".tree")
// Only bulkhead restores such images (runc would not know the keys), so the OCI face's checkpoints
// leave tmpfs mounts to CRIU, as runc does; bulkhead restores either kind.
//
// What stays with CRIU: a tmpfs the container mounted itself, one stacked on or bound elsewhere,
// a read-only one, and any whose copy fails (the reason is logged): CRIU then dumps it as before.
// The restored tmpfs belongs to the host's user namespace (CRIU's would be the container's): root
// in a container with its own user namespace cannot remount it with other options.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "migration/criu.hpp"
#include "oci/spec.hpp"
#include "runtime/restore_mount.hpp"

namespace bulkhead::runtime {

inline constexpr const char *kTmpfsManifest = "bulkhead-tmpfs.json";

// Dump, with the container `pid` frozen: saves the spec's tmpfs mounts into `images` and returns
// CRIU's external mounts for them (destination -> key). `external`: the mounts already declared
// external (a tmpfs may be bound there too, as /dev/null is over masked files). `note` gets one
// line per mount left to CRIU.
Result<std::vector<migration::ExtMount>>
save_tmpfs_mounts(pid_t pid, const oci::Spec &spec, const std::string &images,
                  const std::vector<migration::ExtMount> &external,
                  const std::function<void(const std::string &)> &note);

// Restore: the tmpfs mounts of `images` (none without a manifest), made and filled under
// `state_dir`, for CRIU to bind (key -> path). Detached when this is destroyed.
class TmpfsSources {
public:
  // `cgroup_fd`: the restored container's cgroup directory (-1: none), where the filling process runs.
  static Result<TmpfsSources> prepare(const std::string &images, const std::string &state_dir, int cgroup_fd);
  const std::vector<migration::ExtMount> &ext_mounts() const { return ext_; }

private:
  std::vector<RestoreMount> mounts_;
  std::vector<migration::ExtMount> ext_;
};

} // namespace bulkhead::runtime
