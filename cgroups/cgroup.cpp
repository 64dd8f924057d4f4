#include "cgroups/cgroup.hpp"

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <thread>
#include <unistd.h>

#include "bulkhead/io.hpp"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace bulkhead::cgroups {

Result<std::string> cgroup2_mount() {
  for (const char *candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs sfs {};
    if (::statfs(candidate, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
      return std::string(candidate);
  }
  return fail("no cgroup2 filesystem at /sys/fs/cgroup or /sys/fs/cgroup/unified");
}

namespace {

// "/a//b/./c/" -> "/a/b/c"; nullopt when a component is "..".
std::optional<std::string> clean(const std::string &path) {
  std::string out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos)
      end = path.size();
    std::string part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".")
      continue;
    if (part == "..")
      return std::nullopt;
    out += "/" + part;
  }
  return out.empty() ? "/" : out;
}

} // namespace

Result<std::string> resolve_path(const std::string &cgroups_path, const std::string &id,
                                 const std::string &self_cgroup) {
  if (cgroups_path.empty())
    return "/bulkhead/" + id;
  if (cgroups_path.find(':') != std::string::npos && cgroups_path[0] != '/')
    return failf("linux.cgroupsPath {:?}: systemd slice:prefix:name paths need --systemd-cgroup, "
                 "which is not supported yet",
                 cgroups_path);
  auto cleaned = clean(cgroups_path);
  if (!cleaned)
    return failf("linux.cgroupsPath {:?}: may not contain \"..\"", cgroups_path);
  if (*cleaned == "/")
    return failf("linux.cgroupsPath {:?}: names the root cgroup", cgroups_path);
  if (cgroups_path[0] == '/')
    return *cleaned;
  std::string self = self_cgroup.empty() ? BH_TRY(read_file("/proc/self/cgroup")) : self_cgroup;
  std::string own = "/";
  size_t pos = self.rfind("0::", 0) == 0 ? 0 : self.find("\n0::");
  if (pos != std::string::npos) {
    if (self[pos] == '\n')
      ++pos;
    size_t end = self.find('\n', pos);
    own = self.substr(pos + 3, end == std::string::npos ? std::string::npos : end - pos - 3);
  }
  // As runc: below the parent of our own cgroup, which (unlike ours, holding this very process)
  // may give controllers to children.
  auto parent = clean(own).value_or("/");
  parent = parent.substr(0, parent.rfind('/'));
  return parent + *cleaned;
}

Result<Cgroup> Cgroup::create(const std::string &mount, const std::string &path) {
  std::string full = mount;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos + 1);
    if (next == std::string::npos)
      next = path.size();
    full += path.substr(pos, next - pos);
    pos = next;
    if (::mkdir(full.c_str(), 0755) < 0 && errno != EEXIST)
      return failf_errno("creating cgroup {}", full);
  }
  Cgroup cg(mount, path);
  auto procs = BH_TRY(cg.processes());
  if (!procs.empty())
    return failf("cgroup {} already has processes: is it another container's?", full);
  return cg;
}

Result<UniqueFd> Cgroup::open_dir() const {
  UniqueFd fd(::open(full_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening cgroup {}", full_path());
  return fd;
}

Status Cgroup::add_process(pid_t pid) const {
  return write_file_at(AT_FDCWD, full_path() + "/cgroup.procs", std::to_string(pid), O_WRONLY);
}

Result<std::vector<pid_t>> Cgroup::processes() const {
  std::string data = BH_TRY(read_file(full_path() + "/cgroup.procs"));
  std::vector<pid_t> pids;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos)
      end = data.size();
    if (end > pos)
      pids.push_back(static_cast<pid_t>(std::stol(data.substr(pos, end - pos))));
    pos = end + 1;
  }
  return pids;
}

Result<bool> Cgroup::populated() const {
  std::string events = BH_TRY(read_file(full_path() + "/cgroup.events"));
  return events.find("populated 1") != std::string::npos;
}

Status Cgroup::signal_all(int sig) const {
  if (sig == SIGKILL) {
    auto r = write_file_at(AT_FDCWD, full_path() + "/cgroup.kill", "1", O_WRONLY);
    if (r)
      return {};
  }
  auto pids = BH_TRY(processes());
  for (pid_t p : pids)
    if (::kill(p, sig) < 0 && errno != ESRCH)
      return failf_errno("signalling pid {} of cgroup {}", p, path_);
  return {};
}

Status Cgroup::destroy(int timeout_ms) const {
  if (path_.empty())
    return {};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (::rmdir(full_path().c_str()) == 0 || errno == ENOENT)
      return {};
    if (errno != EBUSY)
      return failf_errno("removing cgroup {}", full_path());
    if (std::chrono::steady_clock::now() > deadline)
      return failf_errno("removing cgroup {} (processes still inside)", full_path());
    // Exiting processes leave the cgroup asynchronously after they are reaped.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

} // namespace bulkhead::cgroups
