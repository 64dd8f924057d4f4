#include "storage/init_detect.hpp"

#include <climits>
#include <deque>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

namespace {

std::deque<std::string> components(const std::string &path) {
  std::deque<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos)
      next = path.size();
    if (next > pos)
      out.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string> &parts) {
  std::string out;
  for (const auto &p : parts)
    out += "/" + p;
  return out.empty() ? "/" : out;
}

bool file_contains(int rootfs_fd, const std::string &path, std::string_view needle) {
  UniqueFd fd(::openat(rootfs_fd, path.c_str() + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return false;
  std::string window;
  char buf[65536];
  for (size_t total = 0; total < (32u << 20);) { // busybox is ~2 MiB; stop at a sane bound
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0)
      return false;
    total += static_cast<size_t>(n);
    window.append(buf, static_cast<size_t>(n));
    if (window.find(needle) != std::string::npos)
      return true;
    window.erase(0, window.size() - std::min(window.size(), needle.size()));
  }
  return false;
}

} // namespace

std::pair<std::string, bool> resolve_inside(int rootfs_fd, const std::string &path) {
  std::deque<std::string> todo = components(path);
  std::vector<std::string> done; // resolved components: real directories, no symlink among them
  int links = 0;
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    if (comp == ".")
      continue;
    if (comp == "..") {
      if (!done.empty())
        done.pop_back();
      continue;
    }
    done.push_back(comp);
    std::string rel = joined(done).substr(1);
    struct stat st {};
    // Every earlier component is a resolved directory, so only the last one could be a symlink,
    // and AT_SYMLINK_NOFOLLOW keeps that one unfollowed.
    if (::fstatat(rootfs_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      for (auto &rest : todo)
        done.push_back(std::move(rest));
      return {joined(done), false};
    }
    if (!S_ISLNK(st.st_mode))
      continue;
    if (++links > 40)
      return {joined(done), false};
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(rootfs_fd, rel.c_str(), target, sizeof target - 1);
    if (n < 0)
      return {joined(done), false};
    std::string t(target, static_cast<size_t>(n));
    done.pop_back();
    if (t.starts_with('/'))
      done.clear();
    auto tc = components(t);
    todo.insert(todo.begin(), tc.begin(), tc.end());
  }
  std::string rel = joined(done);
  struct stat st {};
  bool exists = rel != "/" && ::fstatat(rootfs_fd, rel.c_str() + 1, &st, AT_SYMLINK_NOFOLLOW) == 0;
  return {rel, exists};
}

InitInfo detect_init(int rootfs_fd) {
  InitInfo info;
  auto [resolved, exists] = resolve_inside(rootfs_fd, info.init);
  info.resolved = resolved;
  info.present = exists;
  if (!exists)
    return info;
  std::string base = resolved.substr(resolved.rfind('/') + 1);
  if (base == "systemd")
    info.stop_signal = "SIGRTMIN+3";
  else if (base == "busybox" || file_contains(rootfs_fd, resolved, "BusyBox v"))
    info.stop_signal = "SIGUSR2";
  return info;
}

} // namespace bulkhead::storage
