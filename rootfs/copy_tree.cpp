#include "rootfs/copy_tree.hpp"

#include <climits>
#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/unique_fd.hpp"

namespace bulkhead::rootfs {

namespace {

Status copy_file(int src_dir, int dst_dir, const char *name, const struct stat &st) {
  UniqueFd in(::openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in)
    return failf_errno("tmpcopyup: opening {}", name);
  UniqueFd out(
      ::openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777));
  if (!out)
    return failf_errno("tmpcopyup: creating {}", name);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::sendfile(out.get(), in.get(), nullptr, static_cast<size_t>(left));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return failf_errno("tmpcopyup: copying {}", name);
    left -= n;
  }
  return {};
}

} // namespace

Status copy_tree(int src_dir, int dst_dir) {
  int iter_fd = ::openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (iter_fd < 0)
    return failf_errno("tmpcopyup: reading directory");
  DIR *d = ::fdopendir(iter_fd);
  if (!d) {
    ::close(iter_fd);
    return failf_errno("tmpcopyup: reading directory");
  }
  Status result;
  while (struct dirent *e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..")
      continue;
    struct stat st {};
    if (::fstatat(src_dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      result = failf_errno("tmpcopyup: stat {}", n);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(dst_dir, e->d_name, st.st_mode & 07777) < 0 && errno != EEXIST) {
        result = failf_errno("tmpcopyup: mkdir {}", n);
        break;
      }
      UniqueFd s(::openat(src_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      UniqueFd t(::openat(dst_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!s || !t) {
        result = failf_errno("tmpcopyup: opening directory {}", n);
        break;
      }
      result = copy_tree(s.get(), t.get());
    } else if (S_ISREG(st.st_mode)) {
      result = copy_file(src_dir, dst_dir, e->d_name, st);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t len = ::readlinkat(src_dir, e->d_name, target, sizeof target - 1);
      if (len < 0) {
        result = failf_errno("tmpcopyup: readlink {}", n);
        break;
      }
      target[len] = '\0';
      if (::symlinkat(target, dst_dir, e->d_name) < 0 && errno != EEXIST)
        result = failf_errno("tmpcopyup: symlink {}", n);
    } else {
      continue;
    }
    if (!result)
      break;
    if (::fchownat(dst_dir, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) {
      result = failf_errno("tmpcopyup: chown {}", n);
      break;
    }
  }
  ::closedir(d);
  return result;
}

} // namespace bulkhead::rootfs
