#include "storage/extractor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "storage/resolve.hpp"
#include "storage/tree.hpp"

namespace bulkhead::storage {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::string join(const std::string &a, const std::string &b) { return a.empty() ? b : a + "/" + b; }

// Ownership can only be given away by root; an unprivileged run (tests, rootless) keeps its own.
bool can_chown() { return ::geteuid() == 0; }

Status set_xattrs(int fd, const Entry &e, const std::string &path, bool overlay_upper) {
  for (const auto &[name, value] : e.xattrs) {
    if (!xattr_allowed(name) && !(overlay_upper && name.starts_with("trusted.overlay.")))
      continue;
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) < 0) {
      if (errno == ENOTSUP || errno == EPERM)
        continue; // the staging filesystem cannot hold it: keep the file, lose the attribute
      return failf_errno("entry {}: setting extended attribute {}", path, name);
    }
  }
  return {};
}

// Owner, then mode (chown clears setuid bits), then xattrs (chown clears security.capability).
Status set_fd_metadata(int fd, const Entry &e, const std::string &path, bool overlay_upper = false) {
  if (can_chown() && ::fchown(fd, e.uid, e.gid) < 0)
    return failf_errno("entry {}: chown to {}:{}", path, e.uid, e.gid);
  if (::fchmod(fd, e.perm & 07777) < 0)
    return failf_errno("entry {}: chmod {:o}", path, e.perm & 07777);
  return set_xattrs(fd, e, path, overlay_upper);
}

Status set_times_at(int dirfd, const std::string &name, const Entry &e, const std::string &path) {
  struct timespec ts[2] = {e.atime, e.mtime};
  if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0)
    return failf_errno("entry {}: setting times", path);
  return {};
}

tl::unexpected<Error> refuse(const std::string &path, std::string_view why) {
  return fail(fmt::format("entry {}: {}", path, why), EINVAL);
}

} // namespace

Entry entry_from_stat(const std::string &path, const struct stat &st) {
  Entry e;
  e.path = path;
  e.perm = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime = st.st_mtim;
  e.atime = st.st_atim;
  return e;
}

bool xattr_allowed(const std::string &name) {
  return name.starts_with("user.") || name == "security.capability";
}

void Extractor::touch(const std::string &path) {
  std::string p = path;
  while (!p.empty() && touched_.insert(p).second) {
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? std::string() : p.substr(0, slash);
  }
}

Result<UniqueFd> Extractor::open_parent(const std::string &parent, const std::string &entry) {
  auto fd = open_beneath_nofollow(root_, parent, O_PATH | O_DIRECTORY);
  if (fd)
    return fd;
  int err = fd.error().code;
  if (err == ELOOP || err == EXDEV)
    return refuse(entry, fmt::format("its parent directory {} goes through a symlink (refused: writes "
                                     "through symlinks could leave the rootfs)",
                                     parent));
  if (err == ENOTDIR)
    return refuse(entry, fmt::format("{} is not a directory", parent));
  if (err != ENOENT)
    return fail(fmt::format("entry {}: opening its parent directory {}", entry, parent), err);

  // Archives may omit directory entries: create what is missing, one component at a time, never
  // through a symlink.
  UniqueFd cur = BH_TRY(open_beneath_nofollow(root_, "", O_PATH | O_DIRECTORY));
  std::string prefix;
  size_t pos = 0;
  while (pos < parent.size()) {
    size_t next = parent.find('/', pos);
    if (next == std::string::npos)
      next = parent.size();
    std::string comp = parent.substr(pos, next - pos);
    pos = next + 1;
    prefix = join(prefix, comp);
    auto sub = open_beneath_nofollow(cur.get(), comp, O_PATH | O_DIRECTORY);
    if (!sub && sub.error().code == ENOENT) {
      if (::mkdirat(cur.get(), comp.c_str(), 0755) < 0 && errno != EEXIST)
        return failf_errno("entry {}: creating directory {}", entry, prefix);
      touch(prefix);
      sub = open_beneath_nofollow(cur.get(), comp, O_PATH | O_DIRECTORY);
    }
    if (!sub) {
      if (sub.error().code == ELOOP)
        return refuse(entry, fmt::format("its parent directory {} goes through a symlink (refused: writes "
                                         "through symlinks could leave the rootfs)",
                                         prefix));
      return fail(fmt::format("entry {}: opening directory {}", entry, prefix), sub.error().code);
    }
    cur = std::move(*sub);
  }
  return cur;
}

Status Extractor::whiteout(const std::string &parent, const std::string &name, const std::string &entry) {
  if (name == kOpaqueMarker) {
    // The directory hides everything earlier layers put in it; what this layer wrote stays.
    UniqueFd pfd = BH_TRY(open_parent(parent, entry));
    UniqueFd dir = BH_TRY(open_beneath_nofollow(pfd.get(), "", O_RDONLY | O_DIRECTORY));
    BH_CHECK(remove_children_if(
        dir.get(), parent, [this](const std::string &p) { return !touched(p); },
        [this](const std::string &p) { return touched(p); }));
    touch(parent);
    return {};
  }
  if (name.starts_with(".wh..wh."))
    return {}; // other aufs bookkeeping entries carry no content
  std::string target = name.substr(kWhiteoutPrefix.size());
  if (target.empty() || target == "." || target == "..")
    return refuse(entry, "whiteout of an invalid name");
  std::string path = join(parent, target);
  if (touched(path))
    return {}; // a whiteout hides only lower layers' content
  auto pfd = open_beneath_nofollow(root_, parent, O_PATH | O_DIRECTORY);
  if (!pfd) {
    if (pfd.error().code == ENOENT)
      return {}; // nothing to hide
    return context(Result<void>(tl::unexpected(pfd.error())), fmt::format("entry {}", entry));
  }
  return context(remove_tree_at(pfd->get(), target), fmt::format("entry {}: removing {}", entry, path));
}

// Extended attributes of an entry that cannot be opened (symlink, whiteout): an overlay upper layer
// keeps trusted.overlay.* on them. Set through the directory fd's /proc path with the l* calls,
// which act on the last component itself.
Status Extractor::set_link_xattrs(int dirfd, const std::string &name, const Entry &e,
                                  const std::string &path) {
  if (!overlay_upper_ || e.xattrs.empty())
    return {};
  std::string at = fmt::format("/proc/self/fd/{}/{}", dirfd, name);
  for (const auto &[key, value] : e.xattrs) {
    if (!xattr_allowed(key) && !key.starts_with("trusted.overlay."))
      continue;
    if (::lsetxattr(at.c_str(), key.c_str(), value.data(), value.size(), 0) < 0 && errno != ENOTSUP &&
        errno != EPERM)
      return failf_errno("entry {}: setting extended attribute {}", path, key);
  }
  return {};
}

Status Extractor::apply_root(const Entry &e) {
  if (e.kind != EntryKind::Directory)
    return refuse(".", "the root of the rootfs must be a directory");
  UniqueFd fd(::openat(root_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening the staging rootfs");
  BH_CHECK(set_fd_metadata(fd.get(), e, ".", overlay_upper_));
  dir_times_[""] = {e.atime, e.mtime};
  return {};
}

void IdShift::apply(Entry &e) const {
  e.uid = uid(e.uid);
  e.gid = gid(e.gid);
  for (auto &[key, value] : e.xattrs) {
    // struct vfs_ns_cap_data: le32 magic_etc (revision 3 = 0x03000000), 2 x (le32 permitted,
    // le32 inheritable), le32 rootid.
    if (key != "security.capability" || value.size() != 24)
      continue;
    auto le32 = [&](size_t at) {
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i)
        v = (v << 8) | static_cast<unsigned char>(value[at + static_cast<size_t>(i)]);
      return v;
    };
    if ((le32(0) & 0xFF000000u) != 0x03000000u)
      continue;
    uint32_t root = uid(le32(20));
    for (size_t i = 0; i < 4; ++i)
      value[20 + i] = static_cast<char>((root >> (8 * i)) & 0xFF);
  }
}

Status Extractor::apply(const Entry &e, const DataFn &data) {
  if (!shift_)
    return apply_entry(e, data);
  Entry shifted = e;
  shift_->apply(shifted);
  return apply_entry(shifted, data);
}

Status Extractor::apply_entry(const Entry &e, const DataFn &data) {
  std::string path = BH_TRY(clean_relative_path(e.path));
  if (path.empty())
    return apply_root(e);
  auto [parent, name] = split_last(path);

  bool whiteout_node = overlay_upper_ && e.kind == EntryKind::CharDevice && e.rdev == 0;
  if ((e.kind == EntryKind::CharDevice && !whiteout_node) || e.kind == EntryKind::BlockDevice)
    return refuse(path, "device nodes are refused (a container's /dev comes from the runtime)");
  if (e.kind == EntryKind::Socket)
    return {}; // a socket is only meaningful while its server runs
  if (layers_ && name.starts_with(kWhiteoutPrefix))
    return whiteout(parent, name, path);

  std::string link_target;
  if (e.kind == EntryKind::Hardlink) {
    auto t = clean_relative_path(e.link);
    if (!t)
      return refuse(path,
                    fmt::format("hardlink target {} refused (absolute paths and '..' components are not "
                                "allowed)",
                                e.link));
    link_target = *t;
    if (link_target.empty())
      return refuse(path, "hardlink to the rootfs itself");
    if (link_target == path)
      return {};
  }

  UniqueFd pfd = BH_TRY(open_parent(parent, path));
  int dirfd = pfd.get();

  // Replace what an earlier entry or layer left there, except a directory that stays a directory
  // (its content is merged, as tar and the OCI layer rules do).
  bool reuse_dir = false;
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (e.kind == EntryKind::Directory && S_ISDIR(st.st_mode))
      reuse_dir = true;
    else
      BH_CHECK(
          context(remove_tree_at(dirfd, name), fmt::format("entry {}: replacing the existing entry", path)));
  } else if (errno != ENOENT) {
    return failf_errno("entry {}: stat", path);
  }

  switch (e.kind) {
  case EntryKind::File: {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
      return failf_errno("entry {}: creating file", path);
    if (data)
      BH_CHECK(data(fd.get()));
    BH_CHECK(set_fd_metadata(fd.get(), e, path, overlay_upper_));
    struct timespec ts[2] = {e.atime, e.mtime};
    if (::futimens(fd.get(), ts) < 0)
      return failf_errno("entry {}: setting times", path);
    break;
  }
  case EntryKind::Directory: {
    if (!reuse_dir && ::mkdirat(dirfd, name.c_str(), 0700) < 0)
      return failf_errno("entry {}: creating directory", path);
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
      return failf_errno("entry {}: opening directory", path);
    BH_CHECK(set_fd_metadata(fd.get(), e, path, overlay_upper_));
    dir_times_[path] = {e.atime, e.mtime};
    break;
  }
  case EntryKind::Symlink:
    // The target is stored verbatim: nothing here ever follows it, and inside the container it
    // resolves against the container's root.
    if (::symlinkat(e.link.c_str(), dirfd, name.c_str()) < 0)
      return failf_errno("entry {}: creating symlink to {}", path, e.link);
    if (can_chown() && ::fchownat(dirfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("entry {}: chown to {}:{}", path, e.uid, e.gid);
    BH_CHECK(set_link_xattrs(dirfd, name, e, path));
    BH_CHECK(set_times_at(dirfd, name, e, path));
    break;
  case EntryKind::Hardlink: {
    auto [tparent, tname] = split_last(link_target);
    auto tfd = open_beneath_nofollow(root_, tparent, O_PATH | O_DIRECTORY);
    if (!tfd)
      return refuse(path, fmt::format("hardlink target {} cannot be resolved without following a symlink or "
                                      "does not exist",
                                      link_target));
    if (::linkat(tfd->get(), tname.c_str(), dirfd, name.c_str(), 0) < 0)
      return failf_errno("entry {}: hardlink to {}", path, link_target);
    break;
  }
  case EntryKind::Fifo:
    if (::mknodat(dirfd, name.c_str(), S_IFIFO | 0600, 0) < 0)
      return failf_errno("entry {}: creating fifo", path);
    if (can_chown() && ::fchownat(dirfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("entry {}: chown to {}:{}", path, e.uid, e.gid);
    if (::fchmodat(dirfd, name.c_str(), e.perm & 07777, 0) < 0)
      return failf_errno("entry {}: chmod {:o}", path, e.perm & 07777);
    BH_CHECK(set_times_at(dirfd, name, e, path));
    break;
  case EntryKind::CharDevice: { // an overlay whiteout (checked above)
    if (::mknodat(dirfd, name.c_str(), S_IFCHR | (e.perm & 07777), 0) < 0)
      return failf_errno("entry {}: creating whiteout", path);
    if (can_chown() && ::fchownat(dirfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("entry {}: chown to {}:{}", path, e.uid, e.gid);
    BH_CHECK(set_link_xattrs(dirfd, name, e, path));
    BH_CHECK(set_times_at(dirfd, name, e, path));
    break;
  }
  case EntryKind::BlockDevice:
  case EntryKind::Socket:
    break; // handled above
  }
  if (layers_)
    touch(path);
  return {};
}

Status Extractor::finish() {
  for (const auto &[path, times] : dir_times_) {
    auto fd = open_beneath_nofollow(root_, path, O_RDONLY | O_DIRECTORY);
    if (!fd)
      continue; // removed or replaced by a later entry
    struct timespec ts[2] = {times.first, times.second};
    if (::futimens(fd->get(), ts) < 0)
      return failf_errno("setting the times of directory {}", path.empty() ? "." : path);
  }
  return {};
}

} // namespace bulkhead::storage
