#include "storage/idmapped.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "storage/mountinfo.hpp"

namespace bulkhead::storage {

namespace {

// The type of the filesystem `path` is on, as /proc/self/mountinfo names it (the longest mount
// point that is a prefix), for errors.
std::string fstype_of(const std::string &path) {
  std::string best, type = "unknown";
  for (const auto &m : read_mountinfo()) {
    const auto &mp = m.mount_point;
    bool prefix = path == mp || mp == "/" ||
                  (path.size() > mp.size() && path.compare(0, mp.size(), mp) == 0 && path[mp.size()] == '/');
    if (prefix && mp.size() >= best.size()) {
      best = mp;
      type = m.fstype;
    }
  }
  return type;
}

} // namespace

Result<UniqueFd> make_userns_fd(uint32_t uid, uint32_t gid, uint32_t size) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("pipe for the user namespace holder");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork of the user namespace holder");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    int err = ::unshare(CLONE_NEWUSER) < 0 ? errno : 0;
    (void)!::write(wr.get(), &err, sizeof err);
    for (;;)
      ::pause(); // until the parent has the namespace's fd and kills us
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  } reap{pid};
  wr.reset();
  int err = -1;
  if (::read(rd.get(), &err, sizeof err) != sizeof err)
    return fail("the user namespace holder died before reporting");
  if (err)
    return fail("unshare(CLONE_NEWUSER) for the container's id map", err);
  // Written by us, root in the parent namespace: no newuidmap, and no setgroups "deny" needed.
  for (auto [file, base] : {std::pair{"uid_map", uid}, std::pair{"gid_map", gid}}) {
    std::string path = fmt::format("/proc/{}/{}", pid, file);
    BH_CHECK(context(write_file_at(AT_FDCWD, path, fmt::format("0 {} {}\n", base, size), O_WRONLY),
                     "writing " + path));
  }
  std::string ns = fmt::format("/proc/{}/ns/user", pid);
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", ns);
  return fd;
}

Status mount_idmapped(const std::string &source, const std::string &target, int userns_fd) {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree)
    return failf_errno("open_tree(OPEN_TREE_CLONE) of {}", source);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
    int err = errno;
    return fail(
        fmt::format("{} cannot be idmapped: its filesystem ({}) or this kernel refuses "
                    "mount_setattr(MOUNT_ATTR_IDMAP); unprivileged containers need their templates on "
                    "a filesystem with idmapped mounts (ext4, xfs, btrfs, tmpfs from Linux 6.3, ...): "
                    "move bulkheadd's --root there, or create the container --privileged",
                    source, fstype_of(source)),
        err);
  }
  if (::mkdir(target.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", target);
  if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return failf_errno("move_mount of the idmapped {} to {}", source, target);
  return {};
}

} // namespace bulkhead::storage
