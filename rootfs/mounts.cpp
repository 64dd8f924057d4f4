#include "rootfs/mounts.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "namespaces/id_maps.hpp"
#include "namespaces/userns_fd.hpp"
#include "rootfs/copy_tree.hpp"
#include "rootfs/mount_options.hpp"
#include "rootfs/safe_path.hpp"

namespace bulkhead::rootfs {

namespace {

int mount_setattr(int fd, unsigned int flags, uint64_t set, uint64_t clr) {
  struct mount_attr attr {};
  attr.attr_set = set;
  attr.attr_clr = clr;
  return static_cast<int>(::syscall(SYS_mount_setattr, fd, "", flags | AT_EMPTY_PATH, &attr, sizeof attr));
}

// Flags that belong to the superblock/mount call itself rather than to a later attribute change.
constexpr unsigned long kPerMountFlags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                         MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME |
                                         256 /* MS_NOSYMFOLLOW */;

Status set_attributes(int top_fd, const MountOptions &o, const std::string &dest) {
  constexpr uint64_t kToggles = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                                MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW;
  uint64_t set = mount_attrs_from_flags(o.flags & kPerMountFlags, nullptr);
  // Only what the options name is cleared: flags the kernel locked on the source stay as they are.
  uint64_t clr = mount_attrs_from_flags(o.cleared & kPerMountFlags, nullptr) & kToggles;
  if (o.flags & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME))
    clr |= MOUNT_ATTR__ATIME;
  if ((set || clr) && mount_setattr(top_fd, 0, set, clr) < 0)
    return failf_errno("mount {}: setting mount flags", dest);
  if ((o.rec_attr_set || o.rec_attr_clr) &&
      mount_setattr(top_fd, AT_RECURSIVE, o.rec_attr_set, o.rec_attr_clr) < 0)
    return failf_errno("mount {}: setting recursive mount flags", dest);
  return {};
}

Status set_propagation(int top_fd, const MountOptions &o, const std::string &dest) {
  for (unsigned long p : o.propagation)
    if (::mount(nullptr, fd_path(top_fd).c_str(), nullptr, p, nullptr) < 0)
      return failf_errno("mount {}: setting propagation", dest);
  return {};
}

// Binds a host path over a target fd; sources come from the (trusted) config, never the image.
Status bind_host_path(const std::string &source, int target_fd, bool recursive, const std::string &dest) {
  unsigned long flags = MS_BIND | (recursive ? MS_REC : 0);
  if (::mount(source.c_str(), fd_path(target_fd).c_str(), nullptr, flags, nullptr) < 0)
    return failf_errno("mount {} on {}", source, dest);
  return {};
}

// Attaches a detached mount tree (open_bind_sources) on a target fd: the source was resolved by the
// runtime with host privileges, so nothing is looked up here as the container's user.
Status attach_bind_source(int source_fd, int target_fd, const std::string &source, const std::string &dest) {
  if (::syscall(SYS_move_mount, source_fd, "", target_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return failf_errno("mount {} on {}: attaching the bind source opened by the runtime", source, dest);
  return {};
}

std::string host_cgroup2_mount() {
  struct stat st {};
  if (::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0)
    return "/sys/fs/cgroup";
  return "/sys/fs/cgroup/unified";
}

// pivot_root refuses shared mounts in three places (new root, its parent, the current root), so
// with rootfsPropagation shared the mount holding the rootfs and "/" itself become private first,
// as runc and crun do; the rootfs bind of a private parent is private too, and finalize_root
// applies the requested propagation to the new root after the pivot. Only this mount namespace's
// copies change, and the old root is detached at the pivot anyway.
Status make_pivot_parents_private(const std::string &rootfs) {
  // The mount holding the rootfs is the one at the longest mount point above it; MS_PRIVATE on a
  // path that is not a mount point fails with EINVAL, which is how each candidate is told apart.
  std::string dir = rootfs;
  for (;;) {
    if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) == 0)
      break;
    if (errno != EINVAL || dir == "/")
      return failf_errno("making the mount holding rootfs {} ({}) private for pivot_root", rootfs, dir);
    auto slash = dir.rfind('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
  }
  if (dir != "/" && ::mount(nullptr, "/", nullptr, MS_PRIVATE, nullptr) < 0)
    return failf_errno("making / private for pivot_root");
  return {};
}

} // namespace

Result<UniqueFd> prepare_root(const std::string &rootfs, const std::string &propagation) {
  unsigned long prop = BH_TRY(propagation_flags(propagation));
  unsigned long root_prop = MS_SLAVE | MS_REC;
  if (prop & (MS_PRIVATE))
    root_prop = MS_PRIVATE | MS_REC;
  if (prop & MS_SHARED)
    root_prop = MS_SHARED | MS_REC;
  if (::mount(nullptr, "/", nullptr, root_prop, nullptr) < 0)
    return failf_errno("setting propagation of / in the container mount namespace");
  if (root_prop & MS_SHARED)
    BH_CHECK(make_pivot_parents_private(rootfs));
  if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return failf_errno("bind-mounting rootfs {}", rootfs);
  UniqueFd fd(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening rootfs {}", rootfs);
  return fd;
}

bool is_bind_mount(const oci::Mount &m) { return m.type == "bind" || parse_mount_options(m.options).bind; }

std::string bind_source_path(const oci::Mount &m, const std::string &bundle) {
  if (!m.source.empty() && m.source[0] != '/')
    return bundle + "/" + m.source;
  return m.source;
}

bool is_idmapped(const oci::Mount &m) {
  return parse_mount_options(m.options).idmap || !m.uid_mappings.empty();
}

namespace {

Status idmap_tree(int tree_fd, const oci::Mount &m, bool recursive, const std::string &source,
                  const std::vector<oci::IdMapping> &container_uids,
                  const std::vector<oci::IdMapping> &container_gids) {
  const auto &uids = m.uid_mappings.empty() ? container_uids : m.uid_mappings;
  const auto &gids = m.gid_mappings.empty() ? container_gids : m.gid_mappings;
  if (uids.empty() || gids.empty())
    return failf("mount {}: idmap without uidMappings and gidMappings takes the container's user "
                 "namespace mapping, and this container has none: give the mount its mappings",
                 m.destination);
  UniqueFd userns = BH_TRY(context(ns::userns_with_maps(ns::format_id_map(uids), ns::format_id_map(gids)),
                                   "mount " + m.destination));
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns.get());
  unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (::syscall(SYS_mount_setattr, tree_fd, "", flags, &attr, sizeof attr) < 0)
    return failf_errno("mount {}: idmapping {} (mount_setattr MOUNT_ATTR_IDMAP needs root and a filesystem "
                       "that supports idmapped mounts)",
                       m.destination, source);
  return {};
}

} // namespace

Result<std::vector<UniqueFd>> open_bind_sources(const std::vector<oci::Mount> &mounts,
                                                const std::string &bundle,
                                                const std::vector<oci::IdMapping> &container_uids,
                                                const std::vector<oci::IdMapping> &container_gids) {
  std::vector<UniqueFd> out(mounts.size());
  for (size_t i = 0; i < mounts.size(); ++i) {
    const oci::Mount &m = mounts[i];
    if (!is_bind_mount(m)) {
      if (is_idmapped(m))
        return failf("mount {}: only bind mounts can be idmapped (type {:?})", m.destination, m.type);
      continue;
    }
    std::string source = bind_source_path(m, bundle);
    // A detached copy of the source's mount tree (only its top mount without rbind, as a plain
    // MS_BIND would take), made while this process still has the host's credentials.
    unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    MountOptions o = parse_mount_options(m.options);
    if (o.recursive_bind)
      flags |= AT_RECURSIVE;
    int fd = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), flags));
    if (fd < 0)
      return failf_errno("mount {}: bind source {}", m.destination, source);
    out[i] = UniqueFd(fd);
    if (is_idmapped(m))
      BH_CHECK(idmap_tree(fd, m, o.recursive_idmap, source, container_uids, container_gids));
  }
  return out;
}

Status mount_entry(const MountContext &ctx, const oci::Mount &m, int bind_source_fd) {
  MountOptions o = parse_mount_options(m.options);
  const std::string &dest = m.destination;
  // The parent idmapped the source (open_bind_sources): only its tree can carry the mapping.
  if (is_idmapped(m) && bind_source_fd < 0)
    return failf("mount {}: an idmapped mount needs its source prepared by the runtime as root", dest);
  bool is_bind = o.bind || m.type == "bind";

  if (is_bind) {
    std::string source = bind_source_path(m, ctx.bundle);
    struct stat st {};
    int rc = bind_source_fd >= 0 ? ::fstat(bind_source_fd, &st) : ::stat(source.c_str(), &st);
    if (rc < 0)
      return failf_errno("mount {}: bind source {}", dest, source);
    auto kind = S_ISDIR(st.st_mode) ? TargetKind::Directory : TargetKind::File;
    UniqueFd target = BH_TRY(context(ensure_mount_target(ctx.root_fd, dest, kind), "mount " + dest));
    if (bind_source_fd >= 0)
      BH_CHECK(attach_bind_source(bind_source_fd, target.get(), source, dest));
    else
      BH_CHECK(bind_host_path(source, target.get(), o.recursive_bind, dest));
  } else {
    UniqueFd target =
        BH_TRY(context(ensure_mount_target(ctx.root_fd, dest, TargetKind::Directory), "mount " + dest));
    std::string fstype = m.type == "cgroup" ? "cgroup2" : m.type;
    std::string source = m.source.empty() ? fstype : m.source;
    unsigned long flags = o.flags & ~(MS_REMOUNT);
    if (o.tmpcopyup && fstype != "tmpfs")
      return failf("mount {}: tmpcopyup needs a tmpfs, not {}", dest, fstype);
    UniqueFd lower;
    if (o.tmpcopyup) {
      lower = BH_TRY(open_in_root(ctx.root_fd, dest, O_RDONLY | O_DIRECTORY));
      flags &= ~static_cast<unsigned long>(MS_RDONLY); // made read-only after the copy
    }
    std::string data = o.data;
    // Filesystems without xattr labels take their SELinux label from the mount (as runc does);
    // sysfs, proc and cgroup2 keep the kernel's own labels.
    if (!ctx.mount_label.empty() && (fstype == "tmpfs" || fstype == "devpts" || fstype == "mqueue"))
      data += fmt::format("{}context=\"{}\"", data.empty() ? "" : ",", ctx.mount_label);
    if (fstype == "cgroup2" && !ctx.own_cgroupns && !ctx.cgroup_dir.empty()) {
      BH_CHECK(bind_host_path(ctx.cgroup_dir, target.get(), true, dest));
      UniqueFd top = BH_TRY(open_in_root(ctx.root_fd, dest, O_PATH));
      BH_CHECK(set_attributes(top.get(), o, dest));
    } else if (::mount(source.c_str(), fd_path(target.get()).c_str(), fstype.c_str(), flags,
                       data.empty() ? nullptr : data.c_str()) < 0) {
      int err = errno;
      // Without their own network/ipc/cgroup namespace a user namespace may not mount these
      // pseudo filesystems; binding the host's instance is what runc and crun do.
      std::string fallback;
      if (err == EPERM || err == EBUSY) {
        if (fstype == "sysfs")
          fallback = "/sys";
        if (fstype == "mqueue")
          fallback = "/dev/mqueue";
        if (fstype == "cgroup2")
          fallback = host_cgroup2_mount();
      }
      if (fallback.empty())
        return fail(fmt::format("mount {} ({}) on {}", source, fstype, dest), err);
      BH_CHECK(bind_host_path(fallback, target.get(), true, dest));
      UniqueFd top = BH_TRY(open_in_root(ctx.root_fd, dest, O_PATH));
      BH_CHECK(set_attributes(top.get(), o, dest));
    }
    if (lower) {
      UniqueFd upper = BH_TRY(open_in_root(ctx.root_fd, dest, O_RDONLY | O_DIRECTORY));
      BH_CHECK(context(copy_tree(lower.get(), upper.get()), "mount " + dest));
      if ((o.flags & MS_RDONLY) && mount_setattr(upper.get(), 0, MOUNT_ATTR_RDONLY, 0) < 0)
        return failf_errno("mount {}: making it read-only after tmpcopyup", dest);
    }
  }

  bool needs_top = is_bind || o.rec_attr_set || o.rec_attr_clr || !o.propagation.empty();
  if (!needs_top)
    return {};
  // The fd we mounted on now sits under the new mount; reopen to act on the mount itself.
  UniqueFd top = BH_TRY(context(open_in_root(ctx.root_fd, dest, O_PATH), "mount " + dest));
  if (is_bind) {
    BH_CHECK(set_attributes(top.get(), o, dest));
  } else if ((o.rec_attr_set || o.rec_attr_clr) &&
             mount_setattr(top.get(), AT_RECURSIVE, o.rec_attr_set, o.rec_attr_clr) < 0) {
    return failf_errno("mount {}: setting recursive mount flags", dest);
  }
  return set_propagation(top.get(), o, dest);
}

namespace {

std::string trimmed_destination(const std::string &dest) {
  std::string d = dest;
  while (d.size() > 1 && d.back() == '/')
    d.pop_back();
  return d;
}

} // namespace

std::vector<size_t> late_readonly_mounts(const std::vector<oci::Mount> &mounts) {
  std::vector<size_t> out;
  for (size_t i = 0; i < mounts.size(); ++i) {
    if (!(parse_mount_options(mounts[i].options).flags & MS_RDONLY))
      continue;
    std::string dest = trimmed_destination(mounts[i].destination);
    bool late = dest == "/dev";
    for (size_t j = i + 1; j < mounts.size() && !late; ++j)
      late = trimmed_destination(mounts[j].destination).starts_with(dest + "/");
    if (late)
      out.push_back(i);
  }
  return out;
}

oci::Mount without_readonly(oci::Mount m) {
  std::erase(m.options, std::string("ro"));
  return m;
}

Status make_readonly(int root_fd, const std::string &dest) {
  UniqueFd top = BH_TRY(context(open_in_root(root_fd, dest, O_PATH), "mount " + dest));
  if (mount_setattr(top.get(), 0, MOUNT_ATTR_RDONLY, 0) < 0)
    return failf_errno("mount {}: making it read-only", dest);
  return {};
}

Status finalize_root(const std::string &propagation, bool readonly) {
  if (!propagation.empty()) {
    unsigned long prop = BH_TRY(propagation_flags(propagation));
    if (::mount(nullptr, "/", nullptr, prop, nullptr) < 0)
      return failf_errno("setting rootfsPropagation {} on /", propagation);
  }
  if (readonly) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root)
      return failf_errno("opening / for the read-only remount");
    if (mount_setattr(root.get(), 0, MOUNT_ATTR_RDONLY, 0) < 0)
      return failf_errno("making the root filesystem read-only");
  }
  return {};
}

} // namespace bulkhead::rootfs
