// Child-side mount steps, run inside the container's new mount namespace before pivot_root.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"

namespace bulkhead::rootfs {

struct MountContext {
  int root_fd = -1;   // O_PATH fd of the rootfs bind mount
  std::string bundle; // relative bind sources are relative to it
  bool in_userns = false;
  std::string mount_label; // linux.mountLabel: SELinux context of the filesystems we mount
  // Host path of the container's cgroup and whether it has its own cgroup namespace: without one,
  // a "cgroup" mount is a bind of that directory, never a new cgroup2 mount (which would reset the
  // host's cgroup2 superblock options such as nsdelegate, and waits for an RCU grace period).
  std::string cgroup_dir;
  bool own_cgroupns = false;
};

// Sets propagation of "/" (default rslave so nothing leaks back to the host), then bind-mounts the
// rootfs onto itself so it is a mount point pivot_root accepts. Returns the O_PATH fd of that mount.
Result<UniqueFd> prepare_root(const std::string &rootfs, const std::string &propagation);

// A "bind" entry (by type or by its options), and its source on the host (relative: to the bundle).
// Checkpoint/restore describes these to CRIU as external mounts.
bool is_bind_mount(const oci::Mount &m);
std::string bind_source_path(const oci::Mount &m, const std::string &bundle);

// Parent side, for containers in a user namespace or with idmapped mounts: each bind mount's
// source as a detached mount tree (open_tree OPEN_TREE_CLONE), opened with the runtime's host
// credentials, as runc binds before it drops to the mapped ids. The container's root (say host uid
// 100000) may not be able to reach a source the config names (one below a 0700 root-owned
// directory); attaching the tree needs no lookup. One entry per mount, empty for the mounts that
// are not binds.
// An idmapped mount (options "idmap"/"ridmap", or mounts[].uidMappings: runtime-spec 1.2) gets its
// ids shifted here, where host root may do it: mount_setattr(MOUNT_ATTR_IDMAP) with a user
// namespace of the mount's own mappings, or of the container's (`container_uids`/`gids`) when it
// has none. Idmapping anything but a bind mount is refused.
Result<std::vector<UniqueFd>> open_bind_sources(const std::vector<oci::Mount> &mounts,
                                                const std::string &bundle,
                                                const std::vector<oci::IdMapping> &container_uids,
                                                const std::vector<oci::IdMapping> &container_gids);

// Whether an entry asks for an idmapped mount.
bool is_idmapped(const oci::Mount &m);

// Mounts one config entry at its destination, resolved inside the rootfs. `bind_source_fd`, when
// not -1, is the entry's source from open_bind_sources, attached with move_mount.
Status mount_entry(const MountContext &ctx, const oci::Mount &m, int bind_source_fd = -1);

// Read-only mounts that must stay writable until the rest of the rootfs is built, as runc does:
// /dev (device nodes and symlinks go in) and every mount with a later mount nested below it (its
// mount point may have to be created inside). Indexes into `mounts`.
std::vector<size_t> late_readonly_mounts(const std::vector<oci::Mount> &mounts);
// `m` without its "ro" options, for mounting before make_readonly.
oci::Mount without_readonly(oci::Mount m);
// Makes the mount at `dest` (inside the rootfs) read-only.
Status make_readonly(int root_fd, const std::string &dest);

// After pivot: rootfsPropagation on the new root, and a read-only root when root.readonly.
Status finalize_root(const std::string &propagation, bool readonly);

} // namespace bulkhead::rootfs
