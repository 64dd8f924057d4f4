// Path resolution for everything the storage code writes or reads inside a tree it does not trust
// (a staging rootfs being filled from an archive, an OCI layout directory). The kernel does the
// walk (openat2), so no lstat-then-open race and no symlink can lead out of the tree.
#pragma once

#include <string>
#include <string_view>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

// openat2(dirfd, path, flags) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: the
// path must stay below dirfd and may not traverse any symlink at all (ELOOP if it does).
Result<UniqueFd> open_beneath_nofollow(int dirfd, std::string_view path, int flags);

// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: symlinks are followed but ".." and absolute
// targets are clamped to dirfd, as if dirfd were "/".
Result<UniqueFd> open_in_root(int dirfd, std::string_view path, int flags);

// Normalizes an archive entry's path to "a/b/c" (no leading "./", no empty or "." components, no
// trailing slash; "" is the root itself). Refuses absolute paths and any ".." component with EINVAL,
// naming the entry.
Result<std::string> clean_relative_path(std::string_view raw);

// Splits "a/b/c" into ("a/b", "c") and "c" into ("", "c").
std::pair<std::string, std::string> split_last(const std::string &path);

} // namespace bulkhead::storage
