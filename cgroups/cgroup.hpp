// The container's cgroup v2: where it lives, creating it, killing everything in it and removing it.
// Works on a unified host (/sys/fs/cgroup) and on a hybrid one (/sys/fs/cgroup/unified), where
// freeze, kill and procs work even without controllers.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::cgroups {

// The cgroup2 mount point, or an error when the host has none.
Result<std::string> cgroup2_mount();

// The cgroup v2 path ("0::" line) in the text of /proc/<pid>/cgroup; `where` names it in the error.
Result<std::string> unified_cgroup_from(const std::string &proc_cgroup, const std::string &where);

// linux.cgroupsPath -> path below the cgroup2 mount. Absolute paths are taken as given; relative
// ones are placed under the parent of the caller's own cgroup (as runc does: the caller's cgroup
// holds the caller, so it cannot hand controllers to a child); empty means "/bulkhead/<id>".
// `self_cgroup` is the text of /proc/self/cgroup (read when empty).
Result<std::string> resolve_path(const std::string &cgroups_path, const std::string &id,
                                 const std::string &self_cgroup = "");

class Cgroup {
public:
  Cgroup() = default;
  Cgroup(std::string mount, std::string path) : mount_(std::move(mount)), path_(std::move(path)) {}

  // mkdir -p of the cgroup; fails if it already holds processes (another container's).
  static Result<Cgroup> create(const std::string &mount, const std::string &path);

  const std::string &mount() const { return mount_; }
  const std::string &path() const { return path_; }
  std::string full_path() const { return mount_ + path_; }
  bool empty_path() const { return path_.empty(); }

  // O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP).
  Result<UniqueFd> open_dir() const;
  Status add_process(pid_t pid) const;
  Result<std::vector<pid_t>> processes() const;
  // Every process of the cgroup and of the sub-cgroups a container made below it (threaded ones
  // included), each pid once.
  Result<std::vector<pid_t>> subtree_processes() const;
  Result<bool> populated() const;
  // cgroup.events says "frozen 1": the cgroup or an ancestor is frozen, so a process cloned into
  // it would stop before it runs.
  Result<bool> frozen() const;
  // SIGKILL to every process of the subtree (cgroup.kill, or each pid on kernels before 5.14);
  // other signals go to each process of subtree_processes().
  Status signal_all(int sig) const;
  // Waits (bounded) until no process is left, then removes the directory and every sub-cgroup
  // below it, deepest first (rmdir refuses a cgroup that has children). A missing cgroup is fine.
  Status destroy(int timeout_ms = 5000) const;

private:
  std::string mount_;
  std::string path_;
};

} // namespace bulkhead::cgroups
