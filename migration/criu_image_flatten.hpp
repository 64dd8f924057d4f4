// Flattening a chain of CRIU incremental image directories: the newest one made self-contained,
// so that the ones before it can go. A replication chain (a full dump, then dumps of the pages
// changed since the one before, each with a `parent` link to the one before) otherwise has to be
// cut by a new full dump, which under QEMU TCG takes a 256 MiB container's set 15-20 s to
// stream: that long without a newer set on the standby. Both hosts hold the same chain, so each
// can flatten its own copy with no transfer at all.
//
// What it relies on in CRIU's image format (criu/images/pagemap.proto, criu/pagemap.c): a
// pagemap-*.img (a process's, or shared memory's pagemap-shmem-*.img) is IMG_COMMON_MAGIC,
// PAGEMAP_MAGIC, then records of a 32-bit length and a protobuf message: one pagemap_head
// {pages_id}, then pagemap_entry {vaddr, compat_nr_pages, in_parent, flags, nr_pages}, sorted by
// vaddr. An entry's pages are in pages-<pages_id>.img (raw, in entry order) when it is PE_PRESENT,
// or in the parent directory's pagemap of the same name when it is PE_PARENT (CRIU's restore
// looks them up there by address, splitting a range over the parent's entries, and recursively).
// The flattened pagemap has the same entries, each PE_PRESENT, with the pages read through the
// chain; every other image is the newest directory's own (hard-linked: CRIU never rewrites an
// image). Anything else (another magic, an unknown field, a lazy entry without its pages, an
// address missing from the parent) is an error, and the directory stays as it was: the caller
// then cuts the chain with a full dump, as before.
#pragma once

#include <atomic>
#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::migration {

// Makes `root`/`name` self-contained: its pages read through its `parent` links (each must be
// "../DIR", DIR a directory of `root`: never a path out of it) into pages images of its own, and
// no parent link. Built beside it in `root` and exchanged with it atomically (renameat2
// RENAME_EXCHANGE), so a reader sees the chain or the flat directory, never half of one; the
// name stays, so dumps made against it as parent stay valid (their pages are the same). The
// directories before it are left to the caller (nothing refers to them any more). A `cancel` that
// becomes true stops it between two copies (ECANCELED), changing nothing.
Status flatten_image_chain(int root_fd, const std::string &name, const std::atomic<bool> *cancel = nullptr);

// Replaces `root`/`name`, a directory of a chain, with `flat`: a flat copy of that very directory
// made elsewhere by flatten_image_chain (a standby flattens a copy of hard links in the
// background, off the replication round's path). Its files are hard-linked in (no copy) and
// exchanged atomically as flatten_image_chain does. A copy of another directory of that name (its
// inventory.img is not the same file) is refused with ESTALE, and so is one with a parent link
// (EPROTO): nothing changes then.
Status adopt_flat_copy(int root_fd, const std::string &name, int flat_fd);

// Copies the image directories of `from` into `to` (an empty directory) as hard links (CRIU never
// rewrites an image) and each directory's parent link as it is: a chain the caller may flatten or
// extend without touching the original. Anything but directories of files and links is refused.
Status link_image_dirs(int from_fd, int to_fd, const std::string &what);

// Removes the directories of `root` that the chain of `top` does not reach (after a flattening,
// those older than its flat directory); returns how many went.
Result<int> prune_image_dirs(int root_fd, const std::string &top);

// How many directories `root`/`name` is made of: 1 for a self-contained one, plus its parents.
Result<int> image_chain_length(int root_fd, const std::string &name);

} // namespace bulkhead::migration
