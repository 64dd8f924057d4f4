#include "storage/staging.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/metadata.hpp"
#include "storage/mountinfo.hpp"
#include "storage/tree.hpp"

namespace bulkhead::storage {

Result<Staging> Staging::create(int templates_fd, const std::string &templates_dir, const std::string &name) {
  Staging s;
  s.templates_fd_ = templates_fd;
  s.templates_dir_ = templates_dir;
  s.name_ = name;
  std::string pattern = templates_dir + "/" + std::string(kStagingPrefix) + name + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return failf_errno("creating a staging directory in {}", templates_dir);
  s.dir_name_ = pattern.substr(templates_dir.size() + 1);
  s.dir_ =
      UniqueFd(::openat(templates_fd, s.dir_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s.dir_)
    return failf_errno("opening staging directory {}", pattern);
  if (::mkdirat(s.dir_.get(), "rootfs", 0755) < 0)
    return failf_errno("creating {}/rootfs", pattern);
  s.rootfs_ = UniqueFd(::openat(s.dir_.get(), "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s.rootfs_)
    return failf_errno("opening {}/rootfs", pattern);
  return s;
}

Staging::Staging(Staging &&o) noexcept
    : templates_fd_(o.templates_fd_), templates_dir_(std::move(o.templates_dir_)),
      dir_name_(std::move(o.dir_name_)), name_(std::move(o.name_)), dir_(std::move(o.dir_)),
      rootfs_(std::move(o.rootfs_)), done_(o.done_) {
  o.done_ = true;
}

Staging::~Staging() {
  if (done_ || dir_name_.empty())
    return;
  rootfs_.reset();
  dir_.reset();
  detach_mounts_under(templates_dir_ + "/" + dir_name_);
  (void)remove_tree_at(templates_fd_, dir_name_);
}

Status Staging::commit(const TemplateInfo &info) {
  BH_CHECK(write_durable_at(dir_.get(), "template.json", info_to_json(info),
                            fmt::format("{}/{}/template.json", templates_dir_, dir_name_)));
  // A template is the lower layer of many containers: after a power loss it must be whole, not a
  // renamed directory of half-written files. One syncfs is far cheaper than an fsync per file.
  if (::syncfs(dir_.get()) < 0)
    return failf_errno("syncing the filesystem of {}", templates_dir_);
  if (::renameat2(templates_fd_, dir_name_.c_str(), templates_fd_, name_.c_str(), RENAME_NOREPLACE) < 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      return fail(fmt::format("template {} already exists", name_), EEXIST);
    return failf_errno("renaming {}/{} to {}", templates_dir_, dir_name_, name_);
  }
  done_ = true;
  if (::fsync(templates_fd_) < 0)
    return failf_errno("fsync of {}", templates_dir_);
  return {};
}

void detach_mounts_under(const std::string &path) {
  auto mounts = read_mountinfo();
  // Reverse mount order: children were mounted after their parents.
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it)
    if (it->mount_point == path || it->mount_point.starts_with(path + "/"))
      ::umount2(it->mount_point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
}

} // namespace bulkhead::storage
