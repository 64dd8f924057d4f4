// Small, allocation-light file helpers shared by every folder.
#pragma once

#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead {

inline Status write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("writing {}", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// The whole of [data, data+len) at `offset` (positional: archive data blocks arrive at their offsets,
// holes between them stay holes).
inline Status pwrite_all(int fd, const void *data, size_t len, off_t offset, std::string_view what) {
  const char *p = static_cast<const char *>(data);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("writing {}", what);
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

inline Result<std::string> read_fd(int fd, std::string_view what) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("reading {}", what);
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

inline Result<std::string> read_file_at(int dirfd, const std::string &path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", path);
  return read_fd(fd.get(), path);
}

inline Result<std::string> read_file(const std::string &path) { return read_file_at(AT_FDCWD, path); }

// A directory, its last component not followed if it is a symlink (O_NOFOLLOW).
inline Result<UniqueFd> open_directory(const std::string &path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", path);
  return fd;
}

inline Status write_file_at(int dirfd, const std::string &path, std::string_view data,
                            int flags = O_WRONLY | O_TRUNC | O_CREAT, mode_t mode = 0644) {
  UniqueFd fd(::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode));
  if (!fd)
    return failf_errno("opening {}", path);
  return write_all(fd.get(), data, path);
}

// Readers never see a half-written file: write a temp file beside it, fsync-free rename over.
inline Status write_file_atomic_at(int dirfd, const std::string &name, std::string_view data,
                                   mode_t mode = 0644) {
  std::string tmp = "." + name + ".tmp";
  BH_CHECK(write_file_at(dirfd, tmp, data, O_WRONLY | O_TRUNC | O_CREAT | O_NOFOLLOW, mode));
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) < 0) {
    auto err = failf_errno("renaming {} to {}", tmp, name);
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return err;
  }
  return {};
}

inline Status write_file_atomic(const std::string &path, std::string_view data, mode_t mode = 0644) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dfd)
    return failf_errno("opening directory {}", dir);
  return write_file_atomic_at(dfd.get(), name, data, mode);
}

// Durable replace for records that must survive a crash at any instant: temp file + fsync +
// rename + fsync of the directory. A reader sees the old or the new content, never a mix, and
// after a power loss the rename is not lost.
inline Status write_file_durable(const std::string &path, std::string_view data, mode_t mode = 0644) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd)
    return failf_errno("opening directory {}", dir);
  std::string tmp = "." + name + ".tmp";
  {
    UniqueFd fd(
        ::openat(dfd.get(), tmp.c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd)
      return failf_errno("opening {}/{}", dir, tmp);
    BH_CHECK(write_all(fd.get(), data, path));
    if (::fsync(fd.get()) < 0)
      return failf_errno("fsync of {}/{}", dir, tmp);
  }
  if (::renameat(dfd.get(), tmp.c_str(), dfd.get(), name.c_str()) < 0) {
    auto err = failf_errno("renaming {}/{} to {}", dir, tmp, name);
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    return err;
  }
  if (::fsync(dfd.get()) < 0)
    return failf_errno("fsync of directory {}", dir);
  return {};
}

} // namespace bulkhead
