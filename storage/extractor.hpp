// Writes entries (from a tar stream, an image layer or a directory walk) into a staging rootfs.
//
// Why not libarchive's archive_write_disk: it resolves paths against the process's working directory
// (the daemon is multithreaded, so chdir is not an option) and its symlink checks are lstat walks.
// Here every parent directory is opened by the kernel with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) from the rootfs fd, and the last component is created with *at() calls that
// do not follow it, so no entry can land outside the rootfs whatever came before it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

enum class EntryKind { File, Directory, Symlink, Hardlink, Fifo, CharDevice, BlockDevice, Socket };

struct Entry {
  std::string path; // as given by the source; cleaned (and refused if absolute or with "..") here
  EntryKind kind = EntryKind::File;
  mode_t perm = 0644; // permission bits including setuid/setgid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec mtime {};
  struct timespec atime {};
  std::string link; // symlink target (kept verbatim) or hardlink target (a path in the archive)
  dev_t rdev = 0;   // device number of a character device (only 0/0, an overlay whiteout, is ever made)
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// The fields every entry read from a file system shares: path, permission bits, owner, times.
Entry entry_from_stat(const std::string &path, const struct stat &st);

// Writes the content of a regular file into the fd it is given.
using DataFn = std::function<Status(int fd)>;

// Owners moved from one id range to another: the files of an unprivileged container arriving from
// a host where it had another range (docs/unprivileged.md). Ids in [from, from + size) become
// to + (id - from); others stay (nothing the container made can own them). A file capability
// (security.capability v3) names its namespace's root by host uid: that moves too.
struct IdShift {
  uint32_t from_uid = 0, from_gid = 0, to_uid = 0, to_gid = 0, size = 0;
  uid_t uid(uid_t id) const { return id >= from_uid && id - from_uid < size ? to_uid + (id - from_uid) : id; }
  gid_t gid(gid_t id) const { return id >= from_gid && id - from_gid < size ? to_gid + (id - from_gid) : id; }
  void apply(Entry &e) const;
};

class Extractor {
public:
  // rootfs_fd: an O_RDONLY|O_DIRECTORY fd of the staging rootfs. layers: apply OCI whiteouts
  // (".wh.NAME" deletes NAME, ".wh..wh..opq" hides the lower content of its directory).
  // overlay_upper: the tree is an overlayfs upper layer (a snapshot, a container backup), so its
  // whiteouts (character devices 0/0) and trusted.overlay.* attributes are content and are made;
  // any other device node is still refused.
  Extractor(int rootfs_fd, bool layers, bool overlay_upper = false)
      : root_(rootfs_fd), layers_(layers), overlay_upper_(overlay_upper) {}

  void shift_ids(const IdShift &s) { shift_ = s; }

  // Starts a new layer: whiteouts only ever hide what earlier layers wrote.
  void begin_layer() { touched_.clear(); }

  Status apply(const Entry &e, const DataFn &data);

  // Sets directory times last (creating entries inside a directory changes its mtime).
  Status finish();

private:
  Status apply_entry(const Entry &e, const DataFn &data);
  Result<UniqueFd> open_parent(const std::string &parent, const std::string &entry);
  Status whiteout(const std::string &parent, const std::string &name, const std::string &entry);
  Status apply_root(const Entry &e);
  Status set_link_xattrs(int dirfd, const std::string &name, const Entry &e, const std::string &path);
  void touch(const std::string &path);
  bool touched(const std::string &path) const { return touched_.contains(path); }

  int root_;
  bool layers_;
  bool overlay_upper_;
  std::optional<IdShift> shift_;
  std::unordered_set<std::string> touched_;                        // written in this layer + ancestors
  std::map<std::string, std::pair<timespec, timespec>> dir_times_; // path -> (atime, mtime)
};

// Only these extended attributes are restored: file capabilities and user.* namespaces. trusted.*
// (trusted.overlay.* in a lowerdir steers overlayfs) and security.* labels of another host are dropped.
bool xattr_allowed(const std::string &name);

} // namespace bulkhead::storage
