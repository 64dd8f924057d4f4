#include "rootfs/safe_path.hpp"

#include <climits>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bulkhead::rootfs {

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

std::pair<std::string, std::string> split_parent(std::string_view path) {
  while (path.size() > 1 && path.back() == '/')
    path.remove_suffix(1);
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos)
    return {".", std::string(path)};
  std::string parent(path.substr(0, slash));
  if (parent.empty())
    parent = "/";
  return {parent, std::string(path.substr(slash + 1))};
}

Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags) {
  std::string p(path);
  if (p.empty())
    p = "/";
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how));
    if (fd >= 0)
      return UniqueFd(fd);
    if (errno == EAGAIN || errno == EINTR)
      continue; // a rename raced the lookup: retry
    if (errno == ENOSYS)
      return failf_errno("openat2 {} (bulkhead needs Linux >= 5.6)", p);
    return failf_errno("resolving {} inside the rootfs", p);
  }
}

Result<UniqueFd> mkdir_all_in_root(int root_fd, std::string_view path, mode_t mode) {
  auto existing = open_in_root(root_fd, path, O_PATH | O_DIRECTORY);
  if (existing || existing.error().code != ENOENT)
    return existing;

  // Walk from the root, creating what is missing. Each prefix is re-resolved inside the root, so a
  // symlink planted between two steps still cannot lead outside; a dangling symlink is followed by
  // rewriting the path (its target is created inside the root, as the kernel would resolve it).
  std::string todo(path);
  int links = 0;
restart:
  UniqueFd dir = BH_TRY(open_in_root(root_fd, "/", O_PATH | O_DIRECTORY));
  std::string prefix;
  size_t pos = 0;
  while (pos < todo.size()) {
    size_t next = todo.find('/', pos);
    if (next == std::string::npos)
      next = todo.size();
    std::string comp = todo.substr(pos, next - pos);
    pos = next + 1;
    if (comp.empty() || comp == ".")
      continue;
    std::string candidate = prefix + "/" + comp;
    auto sub = open_in_root(root_fd, candidate, O_PATH | O_DIRECTORY);
    if (!sub && sub.error().code == ENOENT) {
      char target[PATH_MAX];
      ssize_t n = ::readlinkat(dir.get(), comp.c_str(), target, sizeof target - 1);
      if (n >= 0) {
        if (++links > 40)
          return fail(fmt::format("creating {} inside the rootfs", path), ELOOP);
        std::string_view t(target, static_cast<size_t>(n));
        std::string rest = pos < todo.size() ? todo.substr(pos) : "";
        todo = (t.starts_with('/') ? std::string(t) : prefix + "/" + std::string(t)) + "/" + rest;
        goto restart;
      }
      if (::mkdirat(dir.get(), comp.c_str(), mode) < 0 && errno != EEXIST)
        return failf_errno("creating directory {} inside the rootfs", candidate);
      sub = open_in_root(root_fd, candidate, O_PATH | O_DIRECTORY);
    }
    if (!sub)
      return tl::unexpected(sub.error());
    dir = std::move(*sub);
    prefix = std::move(candidate);
  }
  return dir;
}

Result<UniqueFd> ensure_mount_target(int root_fd, std::string_view path, TargetKind kind) {
  int flags = O_PATH | (kind == TargetKind::Directory ? O_DIRECTORY : 0);
  auto existing = open_in_root(root_fd, path, flags);
  if (existing || existing.error().code != ENOENT)
    return existing;
  if (kind == TargetKind::Directory)
    return mkdir_all_in_root(root_fd, path);

  auto [parent, name] = split_parent(path);
  UniqueFd pfd = BH_TRY(mkdir_all_in_root(root_fd, parent));
  UniqueFd dirfd(::openat(pfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd)
    return failf_errno("opening {} inside the rootfs", parent);
  // O_NOFOLLOW|O_EXCL: never create through a dangling symlink.
  int fd = ::openat(dirfd.get(), name.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EEXIST)
    return failf_errno("creating mount point {} inside the rootfs", path);
  if (fd >= 0)
    ::close(fd);
  return open_in_root(root_fd, path, O_PATH);
}

} // namespace bulkhead::rootfs
