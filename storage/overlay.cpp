#include "storage/overlay.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sys/mount.h>
#include <sys/stat.h>

#include "storage/mountinfo.hpp"

namespace bulkhead::storage {

namespace {

// mkdir -p with a mode for the last component only (parents get 0755).
Status make_dirs(const std::string &path, mode_t mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/')
      continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), pos == path.size() ? mode : 0755) < 0 && errno != EEXIST)
      return failf_errno("creating directory {}", prefix);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0)
    return failf_errno("stat of {}", path);
  if (!S_ISDIR(st.st_mode))
    return fail(fmt::format("{} is not a directory", path), ENOTDIR);
  return {};
}

// overlayfs splits its options at ',' and lowerdir at ':'; both can be escaped with '\', but every
// path here is built from validated names, so one that holds them is a bug worth refusing loudly.
Status check_option_path(const char *what, const std::string &path) {
  if (path.empty() || path.find_first_of(",:\\") != std::string::npos)
    return fail(fmt::format("overlay {} \"{}\": empty, or holds ',', ':' or '\\' which the overlay mount "
                            "options cannot carry",
                            what, path),
                EINVAL);
  return {};
}

std::string canonical(const std::string &path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr)
    return buf;
  std::string p = path;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

} // namespace

Status mount_overlay(const OverlayPaths &paths) {
  BH_CHECK(check_option_path("lowerdir", paths.lower));
  BH_CHECK(check_option_path("upperdir", paths.upper));
  BH_CHECK(check_option_path("workdir", paths.work));
  struct stat st {};
  if (::stat(paths.lower.c_str(), &st) < 0)
    return failf_errno("overlay lowerdir {}", paths.lower);
  BH_CHECK(make_dirs(paths.upper, 0755));
  BH_CHECK(make_dirs(paths.work, 0700));
  BH_CHECK(make_dirs(paths.target, 0755));
  // index=off and metacopy=off whatever the kernel was built with: the index binds an upper to the
  // lower's file handles (a re-imported template of the same name would then refuse to mount), and
  // metacopy makes the upper trust xattrs pointing into the lower, which the kernel documentation
  // advises against with untrusted layers. xino and redirect_dir keep the defaults: they only change
  // inode numbering and directory renames inside a container.
  std::string opts = fmt::format("lowerdir={},upperdir={},workdir={},index=off,metacopy=off", paths.lower,
                                 paths.upper, paths.work);
  if (::mount("overlay", paths.target.c_str(), "overlay", 0, opts.c_str()) < 0)
    return failf_errno("mounting overlay on {} ({})", paths.target, opts);
  return {};
}

Status unmount_overlay(const std::string &target) {
  if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
    if (errno == EINVAL || errno == ENOENT)
      return {}; // not a mount point, or gone: nothing mounted there
    return failf_errno("unmounting {}", target);
  }
  return {};
}

bool overlay_mounted(const std::string &target) {
  std::string want = canonical(target);
  std::string fstype;
  for (const auto &m : read_mountinfo())
    if (m.mount_point == want)
      fstype = m.fstype; // the last one is on top
  return fstype == "overlay";
}

} // namespace bulkhead::storage
