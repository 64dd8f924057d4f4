#include "namespaces/id_maps.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

extern char **environ;

namespace bulkhead::ns {

std::string format_id_map(const std::vector<oci::IdMapping> &maps) {
  std::string out;
  for (const auto &m : maps)
    out += fmt::format("{} {} {}\n", m.container_id, m.host_id, m.size);
  return out;
}

namespace {

Status run_map_helper(const char *helper, pid_t pid, const std::vector<oci::IdMapping> &maps) {
  std::vector<std::string> args{helper, std::to_string(pid)};
  for (const auto &m : maps) {
    args.push_back(std::to_string(m.container_id));
    args.push_back(std::to_string(m.host_id));
    args.push_back(std::to_string(m.size));
  }
  std::vector<char *> argv;
  for (auto &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  int rc = ::posix_spawnp(&child, helper, nullptr, nullptr, argv.data(), environ);
  if (rc == ENOENT)
    return failf("{} is not installed (Debian package uidmap): a rootless container with more than "
                 "its user's own id in linux.uidMappings/gidMappings needs it",
                 helper);
  if (rc != 0)
    return fail(fmt::format("running {}", helper), rc);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR)
      return failf_errno("waiting for {}", helper);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return failf("{} {} failed (status {:#x})", helper, pid, status);
  return {};
}

Status write_map(pid_t pid, const char *file, const std::vector<oci::IdMapping> &maps) {
  if (maps.empty())
    return {};
  auto path = fmt::format("/proc/{}/{}", pid, file);
  return write_file_at(AT_FDCWD, path, format_id_map(maps), O_WRONLY);
}

// The kernel lets an unprivileged process map exactly one id, its own, and a gid only after
// setgroups is denied in the new namespace: no helper is needed for that (runc and crun do the same).
bool own_id_only(const std::vector<oci::IdMapping> &maps, uint32_t own) {
  return maps.size() == 1 && maps[0].size == 1 && maps[0].host_id == own;
}

} // namespace

Status write_id_maps(pid_t pid, const std::vector<oci::IdMapping> &uid_maps,
                     const std::vector<oci::IdMapping> &gid_maps) {
  if (::geteuid() != 0) {
    if (own_id_only(uid_maps, ::geteuid()))
      BH_CHECK(context(write_map(pid, "uid_map", uid_maps), "writing the rootless uid mapping"));
    else if (!uid_maps.empty())
      BH_CHECK(run_map_helper("newuidmap", pid, uid_maps));
    if (own_id_only(gid_maps, ::getegid())) {
      BH_CHECK(write_file_at(AT_FDCWD, fmt::format("/proc/{}/setgroups", pid), "deny", O_WRONLY));
      BH_CHECK(context(write_map(pid, "gid_map", gid_maps), "writing the rootless gid mapping"));
    } else if (!gid_maps.empty()) {
      BH_CHECK(run_map_helper("newgidmap", pid, gid_maps));
    }
    return {};
  }
  BH_CHECK(context(write_map(pid, "uid_map", uid_maps), "writing uid mappings"));
  BH_CHECK(context(write_map(pid, "gid_map", gid_maps), "writing gid mappings"));
  return {};
}

} // namespace bulkhead::ns
