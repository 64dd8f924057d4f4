#include "storage/dir_source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

#include "bulkhead/unique_fd.hpp"
#include "storage/tree.hpp"

namespace bulkhead::storage {

namespace {

struct Walk {
  Extractor &x;
  ImportContext &ctx;
  dev_t root_dev;
  std::map<std::pair<dev_t, ino_t>, std::string> links; // first path of each multiply-linked inode
  uint64_t bytes = 0;
};

Status read_xattrs(int fd, Entry &e, const std::string &what) {
  std::vector<char> names(4096);
  ssize_t n;
  for (;;) {
    n = ::flistxattr(fd, names.data(), names.size());
    if (n >= 0)
      break;
    if (errno == ENOTSUP)
      return {};
    if (errno != ERANGE)
      return failf_errno("listing extended attributes of {}", what);
    names.resize(names.size() * 4);
  }
  for (ssize_t i = 0; i < n;) {
    std::string name(&names[static_cast<size_t>(i)]);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (!xattr_allowed(name))
      continue;
    ssize_t len = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (len < 0)
      continue; // removed meanwhile
    std::string value(static_cast<size_t>(len), '\0');
    len = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (len < 0)
      continue;
    value.resize(static_cast<size_t>(len));
    e.xattrs.emplace_back(std::move(name), std::move(value));
  }
  return {};
}

Status copy_data(int in, int out, Walk &w, const std::string &what) {
  for (;;) {
    BH_CHECK(w.ctx.check_cancel());
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 20, 0);
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      char buf[65536]; // filesystems without copy_file_range between them
      n = ::read(in, buf, sizeof buf);
      if (n > 0 && ::write(out, buf, static_cast<size_t>(n)) != n)
        return failf_errno("writing the copy of {}", what);
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("copying {}", what);
    }
    if (n == 0)
      return {};
    w.bytes += static_cast<uint64_t>(n);
    w.ctx.report("copying", w.bytes, 0);
  }
}

Status walk_dir(Walk &w, int dirfd, const std::string &prefix) {
  auto names = BH_TRY(directory_names(dirfd, prefix.empty() ? "." : prefix));
  for (const auto &name : names) {
    BH_CHECK(w.ctx.check_cancel());
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT)
        continue; // removed while we copy
      return failf_errno("stat of {}", path);
    }
    Entry e = entry_from_stat(path, st);
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub)
        return failf_errno("opening directory {}", path);
      e.kind = EntryKind::Directory;
      BH_CHECK(read_xattrs(sub.get(), e, path));
      BH_CHECK(w.x.apply(e, nullptr));
      if (st.st_dev == w.root_dev) // a mount point inside the source is not the template's content
        BH_CHECK(walk_dir(w, sub.get(), path));
    } else if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto [it, first] = w.links.try_emplace({st.st_dev, st.st_ino}, path);
        if (!first) {
          e.kind = EntryKind::Hardlink;
          e.link = it->second;
          BH_CHECK(w.x.apply(e, nullptr));
          continue;
        }
      }
      UniqueFd in(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in)
        return failf_errno("opening {}", path);
      e.kind = EntryKind::File;
      BH_CHECK(read_xattrs(in.get(), e, path));
      BH_CHECK(w.x.apply(e, [&](int out) { return copy_data(in.get(), out, w, path); }));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n < 0)
        return failf_errno("reading symlink {}", path);
      target.resize(static_cast<size_t>(n));
      e.kind = EntryKind::Symlink;
      e.link = std::move(target);
      BH_CHECK(w.x.apply(e, nullptr));
    } else if (S_ISFIFO(st.st_mode)) {
      e.kind = EntryKind::Fifo;
      BH_CHECK(w.x.apply(e, nullptr));
    }
    // Character and block devices, sockets: skipped (see the header).
  }
  return {};
}

} // namespace

Status import_directory(const std::string &dir, Extractor &x, ImportContext &ctx) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return failf_errno("opening source directory {}", dir);
  struct stat st {};
  if (::fstat(root.get(), &st) < 0)
    return failf_errno("stat of source directory {}", dir);
  Walk w{x, ctx, st.st_dev, {}, 0};
  ctx.report("copying", 0, 0, true);
  Entry top = entry_from_stat("", st);
  top.kind = EntryKind::Directory;
  BH_CHECK(x.apply(top, nullptr));
  BH_CHECK(context(walk_dir(w, root.get(), ""), fmt::format("copying {}", dir)));
  ctx.report("copying", w.bytes, 0, true);
  return x.finish();
}

} // namespace bulkhead::storage
