// One file a directory tree is written into and rebuilt from: how bulkheadd's checkpoints carry a
// container's tmpfs mounts (runtime/checkpoint_tmpfs.cpp) instead of CRIU's tar and gzip per mount.
//
// Both sides treat the tree as a tenant's: the writer never follows a symlink nor leaves the
// filesystem it starts on, the reader takes every name and length as hostile (one component, no
// "." or "..", bounded sizes, a truncated file is an error) and creates only below the directory
// it is given, never through a symlink.
//
// Kept: directories, regular files (sparse: only their data extents), symlinks, hard links, device
// nodes and fifos, with owner, mode (set-id bits included) and modification time. Left out, as
// CRIU's tar leaves them out: sockets, extended attributes, access times.
#pragma once

#include <cstdint>

#include "bulkhead/result.hpp"

namespace bulkhead::rootfs {

struct TreeArchiveStats {
  uint64_t entries = 0;    // every entry, the root included
  uint64_t data_bytes = 0; // file content written or read (holes excluded)
};

// Deeper trees are refused (each level holds a directory fd on both sides).
inline constexpr int kTreeArchiveMaxDepth = 256;

// Writes the tree below `root_dir` (a directory fd) to `out_fd`, from its current offset.
Result<TreeArchiveStats> write_tree_archive(int root_dir, int out_fd);

// Rebuilds the tree read from `in_fd` into `root_dir`, which must be empty; the root entry's owner,
// mode and time go to `root_dir` itself.
Result<TreeArchiveStats> read_tree_archive(int in_fd, int root_dir);

} // namespace bulkhead::rootfs
