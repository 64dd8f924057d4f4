// Copying a rootfs directory into a staging rootfs. The walk is fd-based (openat with O_NOFOLLOW
// from the source root), never follows a symlink and stays on the source's filesystem.
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "storage/extractor.hpp"
#include "storage/import_context.hpp"

namespace bulkhead::storage {

// Regular files, directories, symlinks, fifos with owner, mode, times and allowed xattrs; hard links
// within the tree stay hard links. Device nodes are skipped (the runtime provides /dev, and a node
// elsewhere in a template would hand every tenant that device), sockets too. Directories that are
// mount points of another filesystem are copied empty.
Status import_directory(const std::string &dir, Extractor &x, ImportContext &ctx);

} // namespace bulkhead::storage
