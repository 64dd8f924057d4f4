// A mount a restore makes on a new directory under the container's state dir for CRIU to read
// from (the rootfs it binds as root, the sources of masked directories and of tmpfs mounts): made
// private (nothing CRIU mounts below may propagate back to the host's mount table) and detached,
// its directory removed, once CRIU is done (or on any failure). The restored container keeps what
// CRIU bound from it.
#pragma once

#include <functional>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/result.hpp"

namespace bulkhead::runtime {

class RestoreMount {
public:
  static Result<RestoreMount> make(std::string path,
                                   const std::function<Status(const std::string &)> &mount) {
    if (::mkdir(path.c_str(), 0755) < 0)
      return failf_errno("restore: creating {}", path);
    if (auto mounted = mount(path); !mounted) {
      ::rmdir(path.c_str());
      return tl::unexpected(mounted.error());
    }
    ::mount(nullptr, path.c_str(), nullptr, MS_REC | MS_PRIVATE, nullptr);
    RestoreMount m;
    m.path_ = std::move(path);
    m.mounted_ = true;
    return m;
  }
  RestoreMount() = default;
  RestoreMount(RestoreMount &&o) noexcept : path_(std::move(o.path_)), mounted_(o.mounted_) {
    o.mounted_ = false;
  }
  RestoreMount &operator=(RestoreMount &&) = delete;
  ~RestoreMount() { release(); }
  void release() {
    if (!mounted_)
      return;
    ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
    mounted_ = false;
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
  bool mounted_ = false;
};

} // namespace bulkhead::runtime
