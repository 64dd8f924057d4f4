// Copies a directory tree between two directory fds without following any symlink in the source
// (image content is untrusted): used by the tmpcopyup mount extension.
#pragma once

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

// Regular files, directories and symlinks, with owner and mode; other file types are skipped.
Status copy_tree(int src_dir, int dst_dir);

} // namespace bulkhead::rootfs
