#include "storage/resolve.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bulkhead::storage {

namespace {

Result<UniqueFd> openat2_retry(int dirfd, std::string_view path, int flags, uint64_t resolve) {
  std::string p = path.empty() ? std::string(".") : std::string(path);
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  for (;;) {
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof how));
    if (fd >= 0)
      return UniqueFd(fd);
    if (errno == EAGAIN || errno == EINTR)
      continue; // a concurrent rename raced the lookup: the kernel asks for a retry
    return failf_errno("opening {}", p);
  }
}

} // namespace

Result<UniqueFd> open_beneath_nofollow(int dirfd, std::string_view path, int flags) {
  return openat2_retry(dirfd, path, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

Result<UniqueFd> open_in_root(int dirfd, std::string_view path, int flags) {
  return openat2_retry(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

Result<std::string> clean_relative_path(std::string_view raw) {
  if (raw.starts_with('/'))
    return fail(fmt::format("entry {}: absolute paths are refused", raw), EINVAL);
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t next = raw.find('/', pos);
    if (next == std::string_view::npos)
      next = raw.size();
    std::string_view comp = raw.substr(pos, next - pos);
    pos = next + 1;
    if (comp.empty() || comp == ".")
      continue;
    if (comp == "..")
      return fail(fmt::format("entry {}: paths with a '..' component are refused", raw), EINVAL);
    if (!out.empty())
      out += '/';
    out += comp;
  }
  return out;
}

std::pair<std::string, std::string> split_last(const std::string &path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

} // namespace bulkhead::storage
