#include "storage/upper_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/core.h>

#include "bulkhead/unique_fd.hpp"
#include "storage/resolve.hpp"
#include "storage/tree.hpp"

namespace bulkhead::storage {

namespace {

using Xattrs = std::vector<std::pair<std::string, std::string>>;

Status check_cancel(const std::atomic<bool> *cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed))
    return fail("cancelled", ECANCELED);
  return {};
}

std::string join(const std::string &a, const std::string &b) { return a.empty() ? b : a + "/" + b; }

// Through the directory fd's /proc path with the l* calls: works for every file type (a whiteout
// or a symlink cannot be opened) and acts on the last component itself, never on a symlink target.
Result<Xattrs> read_xattrs(int dirfd, const std::string &name, const std::string &what) {
  std::string at =
      name.empty() ? fmt::format("/proc/self/fd/{}", dirfd) : fmt::format("/proc/self/fd/{}/{}", dirfd, name);
  std::vector<char> names(1024);
  ssize_t n;
  for (;;) {
    n = ::llistxattr(at.c_str(), names.data(), names.size());
    if (n >= 0)
      break;
    if (errno == ENOTSUP)
      return Xattrs{};
    if (errno != ERANGE)
      return failf_errno("listing extended attributes of {}", what);
    names.resize(names.size() * 4);
  }
  Xattrs out;
  for (ssize_t i = 0; i < n;) {
    std::string key(&names[static_cast<size_t>(i)]);
    i += static_cast<ssize_t>(key.size()) + 1;
    // Overlay's own attributes and what the template importer keeps; security.* labels are the
    // host's business (an SELinux/AppArmor label of another host means nothing here).
    if (!key.starts_with("trusted.overlay.") && !xattr_allowed(key))
      continue;
    ssize_t len = ::lgetxattr(at.c_str(), key.c_str(), nullptr, 0);
    if (len < 0)
      continue; // removed meanwhile
    std::string value(static_cast<size_t>(len), '\0');
    len = ::lgetxattr(at.c_str(), key.c_str(), value.data(), value.size());
    if (len < 0)
      continue;
    value.resize(static_cast<size_t>(len));
    out.emplace_back(std::move(key), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> read_link(int dirfd, const std::string &name, off_t size, const std::string &what) {
  std::string target(static_cast<size_t>(size > 0 ? size : 4096) + 1, '\0');
  ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
  if (n < 0)
    return failf_errno("reading symlink {}", what);
  target.resize(static_cast<size_t>(n));
  return target;
}

bool same_times(const timespec &a, const timespec &b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Metadata equality for incremental walks; data is compared by size + mtime (as rsync does).
bool same_stat(const struct stat &a, const struct stat &b) {
  if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) || (a.st_mode & 07777) != (b.st_mode & 07777) ||
      a.st_uid != b.st_uid || a.st_gid != b.st_gid || !same_times(a.st_mtim, b.st_mtim))
    return false;
  if (S_ISREG(a.st_mode) || S_ISLNK(a.st_mode))
    return a.st_size == b.st_size;
  if (S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode))
    return a.st_rdev == b.st_rdev;
  return true;
}

Entry make_entry(const std::string &path, const struct stat &st) {
  Entry e = entry_from_stat(path, st);
  switch (st.st_mode & S_IFMT) {
  case S_IFDIR:
    e.kind = EntryKind::Directory;
    break;
  case S_IFLNK:
    e.kind = EntryKind::Symlink;
    break;
  case S_IFIFO:
    e.kind = EntryKind::Fifo;
    break;
  case S_IFCHR:
    e.kind = EntryKind::CharDevice;
    break;
  case S_IFBLK:
    e.kind = EntryKind::BlockDevice;
    break;
  case S_IFSOCK:
    e.kind = EntryKind::Socket;
    break;
  default:
    e.kind = EntryKind::File;
    break;
  }
  e.rdev = st.st_rdev;
  return e;
}

struct Walker {
  const UpperWalk &opts;
  const EntryVisitor &visit;
  dev_t dev;
  std::map<std::pair<dev_t, ino_t>, std::string> links; // first path seen of each multiply-linked inode

  // base_dirfd: the same directory in the base tree, -1 when it has none (everything is new).
  Status entry(int dirfd, int base_dirfd, const std::string &name, const std::string &path) {
    BH_CHECK(check_cancel(opts.cancel));
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT)
        return {}; // removed while we walk (a live, unfrozen layer)
      return failf_errno("stat of {}", path);
    }
    if (S_ISSOCK(st.st_mode))
      return {}; // only meaningful while its server runs
    Entry e = make_entry(path, st);
    e.xattrs = BH_TRY(read_xattrs(dirfd, name, path));
    if (S_ISLNK(st.st_mode))
      e.link = BH_TRY(read_link(dirfd, name, st.st_size, path));

    bool changed = true;
    struct stat bst {};
    bool in_base = opts.base_fd >= 0 && base_dirfd >= 0 &&
                   ::fstatat(base_dirfd, name.c_str(), &bst, AT_SYMLINK_NOFOLLOW) == 0;
    if (in_base && same_stat(st, bst)) {
      auto bx = BH_TRY(read_xattrs(base_dirfd, name, path));
      changed = bx != e.xattrs;
      if (!changed && S_ISLNK(st.st_mode))
        changed = BH_TRY(read_link(base_dirfd, name, bst.st_size, path)) != e.link;
    }

    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = links.try_emplace({st.st_dev, st.st_ino}, path);
      if (!first) {
        if (!changed)
          return {};
        Entry h = e;
        h.kind = EntryKind::Hardlink;
        h.link = it->second;
        return visit(h, -1, 0);
      }
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub = BH_TRY(open_beneath_nofollow(dirfd, name, O_RDONLY | O_DIRECTORY));
      if (changed)
        BH_CHECK(visit(e, -1, 0));
      if (st.st_dev != dev)
        return {}; // a mount point below the layer is not the layer's content
      UniqueFd base_sub;
      if (in_base && S_ISDIR(bst.st_mode))
        base_sub = BH_TRY(open_beneath_nofollow(base_dirfd, name, O_RDONLY | O_DIRECTORY));
      return dir(sub.get(), base_sub ? base_sub.get() : -1, path);
    }
    if (!changed)
      return {};
    if (S_ISREG(st.st_mode)) {
      UniqueFd in(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in)
        return failf_errno("opening {}", path);
      return visit(e, in.get(), static_cast<uint64_t>(st.st_size));
    }
    return visit(e, -1, 0);
  }

  Status dir(int dirfd, int base_dirfd, const std::string &prefix) {
    for (const auto &name : BH_TRY(directory_names(dirfd, prefix.empty() ? "." : prefix)))
      BH_CHECK(entry(dirfd, base_dirfd, name, join(prefix, name)));
    return {};
  }
};

Status deleted_in(int dirfd, int base_dirfd, const std::string &prefix, std::vector<std::string> &out,
                  const std::atomic<bool> *cancel) {
  for (const auto &name : BH_TRY(directory_names(base_dirfd, prefix.empty() ? "." : prefix))) {
    BH_CHECK(check_cancel(cancel));
    std::string path = join(prefix, name);
    struct stat st {
    }, bst{};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT)
        return failf_errno("stat of {}", path);
      out.push_back(path);
      continue;
    }
    if (::fstatat(base_dirfd, name.c_str(), &bst, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("stat of {} in the base", path);
    if (S_ISDIR(st.st_mode) && S_ISDIR(bst.st_mode)) {
      UniqueFd sub = BH_TRY(open_beneath_nofollow(dirfd, name, O_RDONLY | O_DIRECTORY));
      UniqueFd bsub = BH_TRY(open_beneath_nofollow(base_dirfd, name, O_RDONLY | O_DIRECTORY));
      BH_CHECK(deleted_in(sub.get(), bsub.get(), path, out, cancel));
    }
  }
  return {};
}

} // namespace

Status walk_upper(int root_fd, const UpperWalk &opts, const EntryVisitor &visit) {
  struct stat st {};
  if (::fstat(root_fd, &st) < 0)
    return fail_errno("stat of the layer's root");
  Walker w{opts, visit, st.st_dev, {}};
  Entry top = make_entry("", st);
  top.xattrs = BH_TRY(read_xattrs(root_fd, "", "."));
  bool changed = true;
  if (opts.base_fd >= 0) {
    struct stat bst {};
    if (::fstat(opts.base_fd, &bst) < 0)
      return fail_errno("stat of the base's root");
    changed = !same_stat(st, bst) || BH_TRY(read_xattrs(opts.base_fd, "", ".")) != top.xattrs;
  }
  if (changed)
    BH_CHECK(visit(top, -1, 0));
  return w.dir(root_fd, opts.base_fd, "");
}

Result<std::vector<std::string>> deleted_paths(int root_fd, int base_fd, const std::atomic<bool> *cancel) {
  std::vector<std::string> out;
  BH_CHECK(deleted_in(root_fd, base_fd, "", out, cancel));
  return out;
}

Status copy_fd(int in, int out, const std::atomic<bool> *cancel, uint64_t &bytes, const std::string &what) {
  bool plain = false;
  std::vector<char> buf;
  for (;;) {
    BH_CHECK(check_cancel(cancel));
    ssize_t n = -1;
    if (!plain) {
      n = ::copy_file_range(in, nullptr, out, nullptr, 8 << 20, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        plain = true; // filesystems without copy_file_range between them
        continue;
      }
    } else {
      buf.resize(1 << 20);
      n = ::read(in, buf.data(), buf.size());
      if (n > 0) {
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
          if (w < 0) {
            if (errno == EINTR)
              continue;
            return failf_errno("writing the copy of {}", what);
          }
          off += w;
        }
      }
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("copying {}", what);
    }
    if (n == 0)
      return {};
    bytes += static_cast<uint64_t>(n);
  }
}

Status copy_upper(int src_fd, int dst_fd, const std::atomic<bool> *cancel,
                  const std::function<void(uint64_t)> &progress, const timespec *unsettled_since) {
  Extractor x(dst_fd, false, true);
  uint64_t bytes = 0;
  BH_CHECK(walk_upper(src_fd, {cancel, -1}, [&](const Entry &e, int data_fd, uint64_t) -> Status {
    DataFn data;
    if (data_fd >= 0)
      data = [&](int out) { return copy_fd(data_fd, out, cancel, bytes, e.path); };
    if (unsettled_since &&
        (e.mtime.tv_sec > unsettled_since->tv_sec ||
         (e.mtime.tv_sec == unsettled_since->tv_sec && e.mtime.tv_nsec >= unsettled_since->tv_nsec))) {
      Entry marked = e;
      marked.mtime = {0, 0};
      BH_CHECK(x.apply(marked, data));
    } else {
      BH_CHECK(x.apply(e, data));
    }
    if (progress)
      progress(bytes);
    return {};
  }));
  return x.finish();
}

Status clear_dir(int dirfd) {
  return remove_children_if(
      dirfd, "", [](const std::string &) { return true; }, [](const std::string &) { return false; });
}

Status remove_paths(int root_fd, const std::vector<std::string> &paths) {
  for (const auto &raw : paths) {
    std::string path = BH_TRY(clean_relative_path(raw));
    if (path.empty())
      return fail("removing the root of a layer is refused", EINVAL);
    auto [parent, name] = split_last(path);
    auto pfd = open_beneath_nofollow(root_fd, parent, O_PATH | O_DIRECTORY);
    if (!pfd) {
      if (pfd.error().code == ENOENT)
        continue;
      return fail(fmt::format("removing {}: its parent {} cannot be opened without following a symlink", path,
                              parent),
                  pfd.error().code);
    }
    BH_CHECK(context(remove_tree_at(pfd->get(), name), "removing " + path));
  }
  return {};
}

} // namespace bulkhead::storage
