#include "storage/loop_image.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"
#include "storage/mountinfo.hpp"
#include "storage/spawn.hpp"

// Not in every distribution's uapi headers (it lives in fs/ext4/ext4.h): the new block count.
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, __u64)
#endif

namespace bulkhead::storage {

namespace {

constexpr uint64_t kBlockSize = 4096;

// Runs a helper program to its end; its output is the error message when it fails.
Status run_program(const std::vector<std::string> &argv) {
  Child child = BH_TRY(spawn_with_output(argv, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}));
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(child.output.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (output.size() < 8192)
      output.append(buf, static_cast<size_t>(n));
  }
  int status = BH_TRY(wait_child(child.pid));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return {};
  // One line: mkfs wraps its messages with newlines and tabs.
  std::string line;
  for (char ch : output)
    if (ch == '\n' || ch == '\t' || ch == ' ') {
      if (!line.empty() && line.back() != ' ')
        line += ' ';
    } else
      line += ch;
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  output = line;
  std::string how = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                      : fmt::format("signal {}", WTERMSIG(status));
  return fail(fmt::format("{} failed ({}): {}", argv[0], how, output), EIO);
}

std::string real_path(const std::string &path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

} // namespace

Status make_ext4_image(const std::string &image, uint64_t bytes, std::optional<uint64_t> inodes) {
  if (bytes % kBlockSize != 0)
    bytes += kBlockSize - bytes % kBlockSize;
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd)
      return failf_errno("creating the disk image {}", image);
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) < 0) {
      auto err = failf_errno("sizing the disk image {} to {} bytes", image, bytes);
      ::unlink(image.c_str());
      return err;
    }
  }
  // -m 0: the container gets all of its limit (no blocks reserved for a root it does not have on
  // this filesystem); lazy init: the sparse file already reads as zeroes, so nothing is written
  // for inode tables and journal and the image stays small on the host.
  std::vector<std::string> argv = {"mkfs.ext4",
                                   "-q",
                                   "-F",
                                   "-b",
                                   std::to_string(kBlockSize),
                                   "-m",
                                   "0",
                                   "-E",
                                   "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0"};
  if (inodes)
    argv.insert(argv.end(), {"-N", std::to_string(*inodes)});
  argv.push_back(image);
  if (auto r = run_program(argv); !r) {
    ::unlink(image.c_str());
    return fail("formatting " + image + ": " + r.error().message, r.error().code);
  }
  return {};
}

bool ext4_mounted(const std::string &mount_point) {
  for (const auto &m : read_mountinfo())
    if (m.mount_point == mount_point && m.fstype == "ext4")
      return true;
  return false;
}

Result<std::string> attach_and_mount(const std::string &image, const std::string &mount_point) {
  UniqueFd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl)
    return fail_errno("opening /dev/loop-control");
  UniqueFd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!backing)
    return failf_errno("opening the disk image {}", image);
  // Another process may take the free device between GET_FREE and CONFIGURE: then ask again.
  for (int attempt = 0; attempt < 32; ++attempt) {
    int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0)
      return fail_errno("finding a free loop device (LOOP_CTL_GET_FREE)");
    std::string dev = "/dev/loop" + std::to_string(n);
    UniqueFd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) {
      if (errno == ENOENT) // udev has not made the node yet
        continue;
      return failf_errno("opening {}", dev);
    }
    loop_config cfg{};
    cfg.fd = static_cast<__u32>(backing.get());
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char *>(cfg.info.lo_file_name), image.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) < 0) {
      if (errno == EBUSY)
        continue;
      return failf_errno("attaching {} to {} (LOOP_CONFIGURE)", image, dev);
    }
    if (::mount(dev.c_str(), mount_point.c_str(), "ext4", MS_NOATIME, nullptr) < 0) {
      auto err = failf_errno("mounting {} ({}) at {}", dev, image, mount_point);
      ::ioctl(loop.get(), LOOP_CLR_FD, 0);
      return err;
    }
    return dev; // closing `loop` leaves the mount as the device's only user: autoclear holds
  }
  return fail("attaching " + image + ": no loop device stayed free", EBUSY);
}

Result<std::string> loop_device_of(const std::string &image, const std::string &mount_point) {
  struct stat st {};
  if (::stat(mount_point.c_str(), &st) < 0)
    return failf_errno("stat {}", mount_point);
  std::string sys = fmt::format("/sys/dev/block/{}:{}", major(st.st_dev), minor(st.st_dev));
  auto backing = read_file(sys + "/loop/backing_file");
  if (!backing)
    return fail(fmt::format("{} is not on a loop device", mount_point), ENODEV);
  std::string file = *backing;
  while (!file.empty() && file.back() == '\n')
    file.pop_back();
  if (file != real_path(image))
    return fail(fmt::format("{} is backed by {}, not by {}", mount_point, file, image), EBUSY);
  char link[PATH_MAX];
  ssize_t n = ::readlink(sys.c_str(), link, sizeof link - 1);
  if (n <= 0)
    return failf_errno("reading {}", sys);
  std::string target(link, static_cast<size_t>(n));
  return "/dev/" + target.substr(target.rfind('/') + 1);
}

Status grow_mounted_image(const std::string &image, const std::string &mount_point, uint64_t bytes) {
  uint64_t size = BH_TRY(file_size(image));
  if (bytes % kBlockSize != 0)
    bytes += kBlockSize - bytes % kBlockSize;
  if (bytes < size)
    return fail(
        fmt::format("shrinking the disk image {} from {} to {} bytes is not supported", image, size, bytes),
        EINVAL);
  if (bytes == size)
    return {};
  std::string dev = BH_TRY(loop_device_of(image, mount_point));
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(bytes)) < 0)
      return failf_errno("growing the disk image {} to {} bytes", image, bytes);
  }
  UniqueFd loop(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
  if (!loop || ::ioctl(loop.get(), LOOP_SET_CAPACITY, 0) < 0)
    return failf_errno("updating the capacity of {} (LOOP_SET_CAPACITY)", dev);
  UniqueFd dir(::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir)
    return failf_errno("opening {}", mount_point);
  struct statvfs sv {};
  if (::fstatvfs(dir.get(), &sv) < 0)
    return failf_errno("statvfs {}", mount_point);
  __u64 blocks = bytes / sv.f_frsize;
  if (::ioctl(dir.get(), EXT4_IOC_RESIZE_FS, &blocks) < 0)
    return failf_errno("resizing the ext4 filesystem at {} to {} blocks (EXT4_IOC_RESIZE_FS)", mount_point,
                       static_cast<uint64_t>(blocks));
  return {};
}

Status unmount_image(const std::string &mount_point) {
  if (!ext4_mounted(mount_point))
    return {};
  if (::umount2(mount_point.c_str(), UMOUNT_NOFOLLOW) < 0)
    return failf_errno("unmounting the disk image at {}", mount_point);
  return {};
}

Result<FsUsage> fs_usage(const std::string &mount_point) {
  struct statvfs sv {};
  if (::statvfs(mount_point.c_str(), &sv) < 0)
    return failf_errno("statvfs {}", mount_point);
  FsUsage u;
  u.bytes_total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  u.bytes_used = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
  u.inodes_total = sv.f_files;
  u.inodes_used = sv.f_files - sv.f_ffree;
  return u;
}

Result<uint64_t> file_size(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0)
    return failf_errno("stat {}", path);
  return static_cast<uint64_t>(st.st_size);
}

} // namespace bulkhead::storage
