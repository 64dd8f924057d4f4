// Translates OCI mount options into mount(2) flags, propagation flags, recursive mount_setattr
// attributes and the filesystem data string, with the option vocabulary runc accepts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

struct MountOptions {
  unsigned long flags = 0;                // MS_* applied at mount time (and on the bind remount)
  unsigned long cleared = 0;              // MS_* explicitly cleared ("rw", "suid", ...)
  std::vector<unsigned long> propagation; // MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (+MS_REC)
  uint64_t rec_attr_set = 0;              // MOUNT_ATTR_* for "rro", "rnosuid", ...
  uint64_t rec_attr_clr = 0;
  std::string data; // "size=1m,mode=755"
  bool bind = false;
  bool recursive_bind = false;
  bool tmpcopyup = false;
  bool idmap = false;           // "idmap" or "ridmap" (or uidMappings on the mount)
  bool recursive_idmap = false; // "ridmap": every mount of an rbind tree
};

// Unknown "key=value" or bare words become filesystem data, as in runc.
MountOptions parse_mount_options(const std::vector<std::string> &options);

// The MOUNT_ATTR_* equivalent of the per-mount MS_* flags (ro, nosuid, nodev, noexec, atime...),
// used to change a bind mount's flags with mount_setattr without losing locked flags.
uint64_t mount_attrs_from_flags(unsigned long ms_flags, uint64_t *clear_mask);

// Every option word parse_mount_options understands (for `bulkhead features`).
std::vector<std::string> known_mount_options();

// MS_* for a rootfsPropagation value ("rslave" -> MS_SLAVE|MS_REC); 0 for "".
Result<unsigned long> propagation_flags(const std::string &value);

} // namespace bulkhead::rootfs
