#include "storage/tree.hpp"

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

namespace {

Status remove_in(int dirfd, const std::string &name, dev_t dev, const std::string &what);

struct DirCloser {
  void operator()(DIR *d) const { ::closedir(d); }
};

// Names in a directory, read before anything is changed in it (readdir during unlink may skip).
Result<std::vector<std::string>> list_names(int dirfd, const std::string &what) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return failf_errno("opening directory {}", what);
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd));
  if (!dir) {
    ::close(fd);
    return failf_errno("reading directory {}", what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent *de = ::readdir(dir.get())) {
    std::string_view n(de->d_name);
    if (n != "." && n != "..")
      names.emplace_back(n);
    errno = 0;
  }
  if (errno != 0)
    return failf_errno("reading directory {}", what);
  return names;
}

std::string join(const std::string &prefix, const std::string &name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

Result<UniqueFd> open_subdir(int dirfd, const std::string &name, dev_t expect_dev, const std::string &what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening directory {}", what);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0)
    return failf_errno("stat of {}", what);
  if (st.st_dev != expect_dev)
    return fail(fmt::format("{} is a mount point (another filesystem): not descending", what), EXDEV);
  return fd;
}

Status remove_contents(int dirfd, dev_t dev, const std::string &what) {
  auto names = BH_TRY(list_names(dirfd, what));
  for (const auto &n : names)
    BH_CHECK(remove_in(dirfd, n, dev, what + "/" + n));
  return {};
}

Status remove_in(int dirfd, const std::string &name, dev_t dev, const std::string &what) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return {};
    return failf_errno("stat of {}", what);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd sub = BH_TRY(open_subdir(dirfd, name, dev, what));
    BH_CHECK(remove_contents(sub.get(), dev, what));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
      return failf_errno("removing directory {}", what);
    return {};
  }
  if (::unlinkat(dirfd, name.c_str(), 0) < 0 && errno != ENOENT)
    return failf_errno("removing {}", what);
  return {};
}

} // namespace

Result<std::vector<std::string>> directory_names(int dirfd, const std::string &what) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return failf_errno("opening directory {}", what);
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    ::close(fd);
    return failf_errno("reading directory {}", what);
  }
  std::vector<std::string> out;
  errno = 0;
  while (struct dirent *de = ::readdir(d.get())) {
    std::string_view n(de->d_name);
    if (n != "." && n != "..")
      out.emplace_back(n);
    errno = 0;
  }
  if (errno != 0)
    return failf_errno("reading directory {}", what);
  std::sort(out.begin(), out.end());
  return out;
}

Status remove_tree_at(int dirfd, const std::string &name) {
  struct stat parent {};
  if (::fstat(dirfd, &parent) < 0)
    return failf_errno("stat of the directory holding {}", name);
  return remove_in(dirfd, name, parent.st_dev, name);
}

namespace {

Status remove_children_rec(int dirfd, const std::string &prefix, dev_t dev, const PathPredicate &remove,
                           const PathPredicate &descend) {
  auto names = BH_TRY(list_names(dirfd, prefix.empty() ? "." : prefix));
  for (const auto &n : names) {
    std::string path = join(prefix, n);
    if (remove(path)) {
      BH_CHECK(remove_in(dirfd, n, dev, path));
      continue;
    }
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("stat of {}", path);
    if (S_ISDIR(st.st_mode) && descend(path)) {
      UniqueFd sub = BH_TRY(open_subdir(dirfd, n, dev, path));
      BH_CHECK(remove_children_rec(sub.get(), path, dev, remove, descend));
    }
  }
  return {};
}

} // namespace

Status remove_children_if(int dirfd, const std::string &prefix, const PathPredicate &remove,
                          const PathPredicate &descend) {
  struct stat st {};
  if (::fstat(dirfd, &st) < 0)
    return failf_errno("stat of {}", prefix);
  return remove_children_rec(dirfd, prefix, st.st_dev, remove, descend);
}

namespace {

Status count_rec(int dirfd, const std::string &prefix, dev_t dev, TreeCount &count,
                 std::set<std::pair<dev_t, ino_t>> &seen) {
  auto names = BH_TRY(list_names(dirfd, prefix.empty() ? "." : prefix));
  for (const auto &n : names) {
    std::string path = join(prefix, n);
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("stat of {}", path);
    ++count.files;
    if (S_ISREG(st.st_mode)) {
      // Hard links share one inode: count its bytes once.
      if (st.st_nlink <= 1 || seen.insert({st.st_dev, st.st_ino}).second)
        count.size_bytes += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      UniqueFd sub = BH_TRY(open_subdir(dirfd, n, dev, path));
      BH_CHECK(count_rec(sub.get(), path, dev, count, seen));
    }
  }
  return {};
}

Status remove_devices_rec(int dirfd, const std::string &prefix, dev_t dev) {
  auto names = BH_TRY(list_names(dirfd, prefix.empty() ? "." : prefix));
  for (const auto &n : names) {
    std::string path = join(prefix, n);
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("stat of {}", path);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      if (::unlinkat(dirfd, n.c_str(), 0) < 0)
        return failf_errno("removing device node {}", path);
    } else if (S_ISDIR(st.st_mode)) {
      UniqueFd sub = BH_TRY(open_subdir(dirfd, n, dev, path));
      BH_CHECK(remove_devices_rec(sub.get(), path, dev));
    }
  }
  return {};
}

} // namespace

Result<TreeCount> count_tree(int dirfd) {
  struct stat st {};
  if (::fstat(dirfd, &st) < 0)
    return failf_errno("stat of the tree to count");
  TreeCount count;
  std::set<std::pair<dev_t, ino_t>> seen;
  BH_CHECK(count_rec(dirfd, "", st.st_dev, count, seen));
  return count;
}

Status remove_device_nodes(int dirfd) {
  struct stat st {};
  if (::fstat(dirfd, &st) < 0)
    return failf_errno("stat of the tree to clean");
  return remove_devices_rec(dirfd, "", st.st_dev);
}

} // namespace bulkhead::storage
