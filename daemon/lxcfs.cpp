#include "daemon/lxcfs.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

extern char **environ;

namespace bulkhead::daemon {

bool lxcfs_mounted(const std::string &dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 35 0:31 / /var/lib/lxcfs rw,... - fuse.lxcfs lxcfs rw,..."
    std::istringstream s(line);
    std::string id, parent, dev, root, mnt;
    s >> id >> parent >> dev >> root >> mnt;
    if (mnt != dir)
      continue;
    auto dash = line.find(" - ");
    if (dash != std::string::npos && line.compare(dash + 3, 10, "fuse.lxcfs") == 0)
      return true;
  }
  return false;
}

// A mount whose lxcfs died answers every access with ENOTCONN. It stays mounted (a FUSE mount
// outlives its server), so without this check a daemon would "find lxcfs running" and hand every
// new container /proc files that cannot be read.
bool lxcfs_answers(const std::string &dir) {
  struct stat st {};
  return ::stat((dir + "/proc/meminfo").c_str(), &st) == 0 || errno != ENOTCONN;
}

Status ensure_lxcfs(const std::string &dir) {
  if (lxcfs_mounted(dir)) {
    if (lxcfs_answers(dir))
      return {};
    // Only a dead lxcfs's own mount is detached (never anything else at that path); containers
    // started before keep their unreadable binds until they restart: their mounts pin the old
    // connection, and the daemon does not reach into their mount namespaces.
    if (::umount2(dir.c_str(), MNT_DETACH) < 0)
      return failf_errno("detaching the dead lxcfs mount at {} (its server is gone: ENOTCONN)", dir);
  }
  const char *binary = "/usr/bin/lxcfs";
  if (::access(binary, X_OK) < 0)
    return fail_errno(std::string("lxcfs is not running on ") + dir + " and " + binary + " is missing");
  if (::access("/dev/fuse", R_OK | W_OK) < 0)
    return fail_errno("lxcfs needs /dev/fuse");
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  char *argv[] = {const_cast<char *>(binary), const_cast<char *>(dir.c_str()), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, binary, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return fail("starting lxcfs", rc);
  for (int i = 0; i < 100; ++i) {
    if (lxcfs_mounted(dir))
      return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fail("lxcfs did not mount " + dir + " within 5 s", ETIMEDOUT);
}

} // namespace bulkhead::daemon
