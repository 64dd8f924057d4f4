// Walks and copies of an overlayfs upper layer (a container's writable layer, or a snapshot of one)
// exactly as it is: whiteouts (character devices 0/0), trusted.overlay.* attributes, owners, modes,
// times, hardlinks and symlinks are content. Nothing follows a symlink (every walk is fd-based and
// symlinks are read, never opened) and nothing crosses into another filesystem mounted below.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "storage/extractor.hpp"

namespace bulkhead::storage {

// Gets each entry, parents before children, path relative to the walk's root ("" is the root
// itself); for a regular file also an fd to read its data from and its size (else -1 and 0).
using EntryVisitor = std::function<Status(const Entry &e, int data_fd, uint64_t size)>;

struct UpperWalk {
  const std::atomic<bool> *cancel = nullptr;
  // When >= 0, a directory fd of an earlier copy of the tree (a snapshot): only entries that differ
  // from their counterpart there are visited (type, mode, owner, size, mtime, symlink target,
  // device number, extended attributes), so an unchanged file is skipped without reading it.
  int base_fd = -1;
};

Status walk_upper(int root_fd, const UpperWalk &opts, const EntryVisitor &visit);

// The paths under base_fd that no longer exist under root_fd: only the top of each vanished
// subtree, in walk order (what an incremental backup records as deletions).
Result<std::vector<std::string>> deleted_paths(int root_fd, int base_fd, const std::atomic<bool> *cancel);

// Copies the tree below src_fd into the directory dst_fd (empty, or holding only what the copy
// may replace), everything as-is; `progress` gets the bytes copied so far.
// `unsettled_since` (a copy of a layer that runs on, not frozen): an entry whose mtime is at or
// after it is copied with mtime 0, so an incremental walk against the copy always sends it again.
// A file's mtime is read before its data, so a write during the copy leaves a later mtime, unless
// it falls in the same coarse clock tick as the file's previous write: only files written shortly
// before the copy can hide a change that way, and those are the ones marked.
Status copy_upper(int src_fd, int dst_fd, const std::atomic<bool> *cancel,
                  const std::function<void(uint64_t)> &progress = nullptr,
                  const timespec *unsettled_since = nullptr);

// Removes everything below dirfd, never following a symlink; dirfd itself stays (an upper layer
// may be the root of a mounted filesystem image).
Status clear_dir(int dirfd);

// Copies what is left of `in` to `out` (copy_file_range, read/write when the kernel cannot).
Status copy_fd(int in, int out, const std::atomic<bool> *cancel, uint64_t &bytes, const std::string &what);

// Removes relative paths below root_fd (files or whole trees), each parent opened without
// following a symlink; a path that is already gone is fine.
Status remove_paths(int root_fd, const std::vector<std::string> &paths);

} // namespace bulkhead::storage
