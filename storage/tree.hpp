// fd-based walks of a directory tree that never follow a symlink and never leave the filesystem
// they start on: removing a template (rm -rf), counting its files, dropping device nodes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

// The names in the directory dirfd (without "." and ".."), sorted so that walks, and the archives
// made from them, are reproducible. `what` names the directory in errors.
Result<std::vector<std::string>> directory_names(int dirfd, const std::string &what);

// Removes `name` (any type; a directory with everything below it) relative to dirfd. Succeeds if it
// does not exist. Refuses (EXDEV) to descend into a directory on another filesystem: a mount point
// left inside (a bind of the host's /dev by debootstrap, say) must never have its contents deleted.
Status remove_tree_at(int dirfd, const std::string &name);

// Removes the entries of the directory dirfd for which `remove` (given the entry's path relative to
// dirfd's directory, "a/b") returns true; `descend` says for a kept directory whether to look inside.
using PathPredicate = std::function<bool(const std::string &)>;
Status remove_children_if(int dirfd, const std::string &prefix, const PathPredicate &remove,
                          const PathPredicate &descend);

struct TreeCount {
  uint64_t size_bytes = 0; // regular files, each inode once
  uint64_t files = 0;      // entries below the root
};
Result<TreeCount> count_tree(int dirfd);

// Unlinks every character and block device below dirfd (for /dev of a debootstrapped tree).
Status remove_device_nodes(int dirfd);

} // namespace bulkhead::storage
