#include "cgroups/cgroup.hpp"

#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <set>
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

Result<std::string> unified_cgroup_from(const std::string &text, const std::string &where) {
  size_t pos = text.rfind("0::", 0) == 0 ? 0 : text.find("\n0::");
  if (pos == std::string::npos)
    return failf("{}: no cgroup v2 (\"0::\") line", where);
  if (text[pos] == '\n')
    ++pos;
  size_t end = text.find('\n', pos);
  return text.substr(pos + 3, end == std::string::npos ? std::string::npos : end - pos - 3);
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
    return failf("linux.cgroupsPath {:?}: a systemd \"slice:prefix:name\" path needs the systemd cgroup "
                 "driver (bulkhead --systemd-cgroup)",
                 cgroups_path);
  auto cleaned = clean(cgroups_path);
  if (!cleaned)
    return failf("linux.cgroupsPath {:?}: may not contain \"..\"", cgroups_path);
  if (*cleaned == "/")
    return failf("linux.cgroupsPath {:?}: names the root cgroup", cgroups_path);
  if (cgroups_path[0] == '/')
    return *cleaned;
  std::string self = self_cgroup.empty() ? BH_TRY(read_file("/proc/self/cgroup")) : self_cgroup;
  std::string own = unified_cgroup_from(self, "/proc/self/cgroup").value_or("/");
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

namespace {

std::vector<pid_t> parse_pids(const std::string &data) {
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

// The sub-cgroups directly below `dir` (absolute paths).
Result<std::vector<std::string>> child_cgroups(const std::string &dir) {
  std::unique_ptr<DIR, int (*)(DIR *)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT)
      return std::vector<std::string>{};
    return failf_errno("listing cgroup {}", dir);
  }
  std::vector<std::string> out;
  while (struct dirent *e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..")
      out.push_back(dir + "/" + e->d_name);
  }
  return out;
}

// `dir` and every cgroup below it, parents before their children.
Result<std::vector<std::string>> subtree(const std::string &dir) {
  std::vector<std::string> out{dir};
  for (size_t i = 0; i < out.size(); ++i) {
    auto children = BH_TRY(child_cgroups(out[i]));
    out.insert(out.end(), children.begin(), children.end());
  }
  return out;
}

// rmdir with the retry the kernel needs: exiting processes leave a cgroup asynchronously after
// they are reaped, so EBUSY lasts a moment after a kill.
Status remove_dir(const std::string &dir, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT)
      return {};
    if (errno != EBUSY)
      return failf_errno("removing cgroup {}", dir);
    if (std::chrono::steady_clock::now() > deadline)
      return failf_errno("removing cgroup {} (processes still inside)", dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

} // namespace

Result<std::vector<pid_t>> Cgroup::processes() const {
  return parse_pids(BH_TRY(read_file(full_path() + "/cgroup.procs")));
}

Result<std::vector<pid_t>> Cgroup::subtree_processes() const {
  std::set<pid_t> seen;
  std::vector<pid_t> out;
  for (const auto &dir : BH_TRY(subtree(full_path()))) {
    // A threaded cgroup may refuse cgroup.procs (EOPNOTSUPP); its cgroup.threads lists thread ids,
    // and kill(2) of a thread id reaches the whole process.
    auto data = read_file(dir + "/cgroup.procs");
    if (!data)
      data = read_file(dir + "/cgroup.threads");
    if (!data) {
      if (data.error().code == ENOENT)
        continue; // removed meanwhile
      return tl::unexpected(data.error());
    }
    for (pid_t p : parse_pids(*data))
      if (seen.insert(p).second)
        out.push_back(p);
  }
  return out;
}

Result<bool> Cgroup::populated() const {
  std::string events = BH_TRY(read_file(full_path() + "/cgroup.events"));
  return events.find("populated 1") != std::string::npos;
}

Result<bool> Cgroup::frozen() const {
  std::string events = BH_TRY(read_file(full_path() + "/cgroup.events"));
  return events.find("frozen 1") != std::string::npos;
}

Status Cgroup::signal_all(int sig) const {
  if (sig == SIGKILL) {
    auto r = write_file_at(AT_FDCWD, full_path() + "/cgroup.kill", "1", O_WRONLY);
    if (r)
      return {};
  }
  auto pids = BH_TRY(subtree_processes());
  for (pid_t p : pids)
    if (::kill(p, sig) < 0 && errno != ESRCH)
      return failf_errno("signalling pid {} of cgroup {}", p, path_);
  return {};
}

Status Cgroup::destroy(int timeout_ms) const {
  if (path_.empty())
    return {};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto dirs = BH_TRY(subtree(full_path()));
  // Children before parents: subtree() lists parents first.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    BH_CHECK(remove_dir(*it, deadline));
  return {};
}

} // namespace bulkhead::cgroups
