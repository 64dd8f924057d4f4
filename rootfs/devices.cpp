#include "rootfs/devices.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rootfs/safe_path.hpp"

namespace bulkhead::rootfs {

const std::vector<oci::Device> &default_devices() {
  static const std::vector<oci::Device> devices = [] {
    auto dev = [](const char *path, int64_t major, int64_t minor) {
      oci::Device d;
      d.path = path;
      d.type = 'c';
      d.major = major;
      d.minor = minor;
      d.file_mode = 0666;
      d.uid = 0;
      d.gid = 0;
      return d;
    };
    return std::vector<oci::Device>{dev("/dev/null", 1, 3),    dev("/dev/zero", 1, 5),
                                    dev("/dev/full", 1, 7),    dev("/dev/random", 1, 8),
                                    dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0)};
  }();
  return devices;
}

namespace {

mode_t node_type(char type) {
  switch (type) {
  case 'b':
    return S_IFBLK;
  case 'p':
    return S_IFIFO;
  default:
    return S_IFCHR; // 'c' and 'u'
  }
}

Status bind_device(int root_fd, const oci::Device &d) {
  UniqueFd target = BH_TRY(ensure_mount_target(root_fd, d.path, TargetKind::File));
  if (::mount(d.path.c_str(), fd_path(target.get()).c_str(), nullptr, MS_BIND, nullptr) < 0)
    return failf_errno("device {}: binding the host node", d.path);
  return {};
}

Status make_device(int root_fd, const oci::Device &d) {
  auto [parent, name] = split_parent(d.path);
  UniqueFd dir = BH_TRY(mkdir_all_in_root(root_fd, parent));
  // Whatever the image put there (a symlink to a host file, say) is replaced, never followed.
  if (::unlinkat(dir.get(), name.c_str(), 0) < 0 && errno != ENOENT && errno != EISDIR)
    return failf_errno("device {}: removing the existing entry", d.path);
  mode_t mode = node_type(d.type) | (d.file_mode.value_or(0666) & 07777);
  dev_t dev = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  if (::mknodat(dir.get(), name.c_str(), mode, dev) < 0)
    return failf_errno("device {}: mknod", d.path);
  if (::fchownat(dir.get(), name.c_str(), d.uid.value_or(0), d.gid.value_or(0), AT_SYMLINK_NOFOLLOW) < 0)
    return failf_errno("device {}: chown", d.path);
  // mknod is filtered by the umask; the spec's mode is meant literally.
  UniqueFd node = BH_TRY(open_in_root(root_fd, d.path, O_PATH));
  if (::fchmodat(AT_FDCWD, fd_path(node.get()).c_str(), mode & 07777, 0) < 0)
    return failf_errno("device {}: chmod", d.path);
  return {};
}

} // namespace

Status create_devices(int root_fd, const std::vector<oci::Device> &devices, bool bind_from_host) {
  for (const auto &d : devices) {
    if (bind_from_host)
      BH_CHECK(bind_device(root_fd, d));
    else
      BH_CHECK(make_device(root_fd, d));
  }
  return {};
}

Status create_dev_symlinks(int root_fd) {
  static constexpr std::pair<const char *, const char *> links[] = {
      {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
  };
  UniqueFd dev = BH_TRY(mkdir_all_in_root(root_fd, "/dev"));
  for (const auto &[target, name] : links) {
    if (std::string_view(name) == "ptmx")
      ::unlinkat(dev.get(), name, 0);
    if (::symlinkat(target, dev.get(), name) < 0 && errno != EEXIST)
      return failf_errno("creating symlink /dev/{}", name);
  }
  return {};
}

Status reopen_stdio_dev_null() {
  struct stat null_st {};
  if (::stat("/dev/null", &null_st) < 0 || !S_ISCHR(null_st.st_mode))
    return {};
  UniqueFd null;
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null_st.st_rdev)
      continue;
    if (!null && !(null = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC))))
      return failf_errno("opening the container's /dev/null for stdio");
    if (::dup3(null.get(), fd, 0) < 0)
      return failf_errno("replacing stdio fd {} with the container's /dev/null", fd);
  }
  return {};
}

} // namespace bulkhead::rootfs
