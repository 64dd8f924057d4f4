#include "runtime/checkpoint_tmpfs.hpp"

// The processes involved (this one is single-threaded: the OCI command or bulkheadd's checkpoint
// worker and restoring monitor, so it may fork):
// | side    | process                              | does                                                   |
// |---------|--------------------------------------|--------------------------------------------------------|
// | dump    | this one                             | picks the mounts from /proc/PID/mountinfo, opens one   |
// |         |                                      | archive file per mount in the images dir, forks        |
// | dump    | child: setns into the container's    | open_tree(OPEN_TREE_CLONE) of each mount: a detached   |
// |         | mount namespace                      | copy without the mounts on top of it; writes it to its |
// |         |                                      | archive fd; one line per mount on a pipe: "N ok" or    |
// |         |                                      | "N <error>"; exits                                     |
// | dump    | this one                             | keeps the mounts whose line says ok, removes the other |
// |         |                                      | archives, writes the manifest                          |
// | restore | this one                             | mounts a tmpfs per archive under the state dir         |
// | restore | child, cloned into the container's   | rebuilds the archive into it, exits 0 or writes the    |
// |         | cgroup (its pages charged there)     | error on a pipe and exits 1                            |
#include <cctype>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"
#include "namespaces/mountinfo.hpp"
#include "rootfs/mount_options.hpp"
#include "rootfs/tree_archive.hpp"
#include "runtime/clone.hpp"

namespace bulkhead::runtime {

namespace {

constexpr const char *kKeyPrefix = "bulkhead-tmpfs-";
constexpr size_t kMaxMounts = 64;

// The tmpfs options a restore may pass on (the superblock's, as mountinfo shows them).
bool allowed_super_option(std::string_view o) {
  for (std::string_view key :
       {"size=", "nr_blocks=", "nr_inodes=", "mode=", "uid=", "gid=", "huge=", "mpol="})
    if (o.starts_with(key)) {
      for (char c : o.substr(key.size()))
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '%' && c != '.' && c != ':' && c != '-' &&
            c != '_')
          return false;
      return true;
    }
  return o == "inode64" || o == "inode32";
}

bool allowed_flag(std::string_view f) {
  for (std::string_view known :
       {"ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime"})
    if (f == known)
      return true;
  return false;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos)
      return out;
    start = end + 1;
  }
}

std::string without_trailing_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

struct Candidate {
  std::string destination;
  dev_t dev = 0;
  std::string options;            // kept super options
  std::vector<std::string> flags; // per-mount words
  UniqueFd archive;
};

// Which of the spec's tmpfs mounts the runtime can save itself, and why not the others.
std::vector<Candidate> pick(const oci::Spec &spec, const std::vector<ns::MountInfo> &table,
                            const std::vector<migration::ExtMount> &external,
                            const std::function<void(const std::string &)> &note) {
  auto is_external = [&external](const std::string &point) {
    for (const auto &e : external)
      if (e.key == point)
        return true;
    return false;
  };
  std::vector<Candidate> out;
  for (const auto &m : spec.mounts) {
    if (m.type != "tmpfs")
      continue;
    std::string dest = without_trailing_slash(m.destination);
    const ns::MountInfo *found = nullptr;
    int at_dest = 0, same_fs = 0;
    for (const auto &e : table)
      if (e.mount_point == dest) {
        ++at_dest;
        found = &e;
      }
    if (at_dest != 1 || found->fstype != "tmpfs" || found->root != "/") {
      note(fmt::format("tmpfs {}: left to CRIU ({} mounts there, the top one {})", dest, at_dest,
                       found ? found->fstype + " of " + found->root : std::string("none")));
      continue;
    }
    // Other mounts of the same filesystem would be CRIU's binds of an external mount, which it
    // cannot make; those CRIU leaves alone anyway (masked files bound from this /dev/null) do not count.
    for (const auto &e : table)
      same_fs += e.dev == found->dev && (&e == found || !is_external(e.mount_point));
    auto super = split(found->super_options, ',');
    if (same_fs != 1 || super.empty() || super[0] != "rw") {
      note(fmt::format("tmpfs {}: left to CRIU ({})", dest,
                       same_fs != 1 ? "its filesystem is mounted elsewhere too" : "read-only filesystem"));
      continue;
    }
    Candidate c;
    c.destination = dest;
    c.dev = found->dev;
    for (const auto &o : super)
      if (allowed_super_option(o))
        c.options += (c.options.empty() ? "" : ",") + o;
    bool atime = false;
    for (const auto &f : split(found->mount_options, ','))
      if (allowed_flag(f)) {
        c.flags.push_back(f);
        atime = atime || f == "relatime" || f == "noatime";
      }
    if (!atime)
      c.flags.push_back("strictatime"); // mountinfo names no atime mode for strictatime
    out.push_back(std::move(c));
  }
  return out;
}

// The child's part of the dump (the table above): never returns.
[[noreturn]] void save_in_child(int mnt_ns, std::vector<Candidate> &mounts, int report) {
  auto say = [report](size_t i, const std::string &what) {
    (void)write_all(report, fmt::format("{} {}\n", i, what), "report");
  };
  if (::setns(mnt_ns, CLONE_NEWNS) < 0) {
    for (size_t i = 0; i < mounts.size(); ++i)
      say(i, fmt::format("setns into the container's mount namespace: {}", std::strerror(errno)));
    ::_exit(1);
  }
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Candidate &c = mounts[i];
    // A detached copy of just this mount: what is mounted on top of its directories is not in it.
    int tree = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, c.destination.c_str(),
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW));
    if (tree < 0) {
      say(i, fmt::format("open_tree of {}: {}", c.destination, std::strerror(errno)));
      continue;
    }
    UniqueFd tree_fd(tree);
    UniqueFd dir(::openat(tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st {};
    if (!dir || ::fstat(dir.get(), &st) < 0 || st.st_dev != c.dev) {
      say(i, fmt::format("{} is not the tmpfs its mountinfo line named", c.destination));
      continue;
    }
    auto written = rootfs::write_tree_archive(dir.get(), c.archive.get());
    say(i, written ? std::string("ok") : written.error().text());
  }
  ::_exit(0);
}

Status remove_old_files(const std::string &images) {
  UniqueFd dir = BH_TRY(open_directory(images));
  int iter = ::dup(dir.get());
  DIR *d = iter < 0 ? nullptr : ::fdopendir(iter);
  if (!d) {
    if (iter >= 0)
      ::close(iter);
    return failf_errno("{}: reading the directory", images);
  }
  std::vector<std::string> old;
  while (struct dirent *e = ::readdir(d))
    if (std::string_view(e->d_name).starts_with("bulkhead-tmpfs"))
      old.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto &name : old)
    if (::unlinkat(dir.get(), name.c_str(), 0) < 0 && errno != ENOENT)
      return failf_errno("{}/{}: removing a file of an earlier checkpoint", images, name);
  return {};
}

} // namespace

Result<std::vector<migration::ExtMount>>
save_tmpfs_mounts(pid_t pid, const oci::Spec &spec, const std::string &images,
                  const std::vector<migration::ExtMount> &external,
                  const std::function<void(const std::string &)> &note) {
  BH_CHECK(remove_old_files(images));
  auto table = BH_TRY(ns::read_mountinfo(pid));
  std::vector<Candidate> mounts = pick(spec, table, external, note);
  if (mounts.size() > kMaxMounts)
    mounts.resize(kMaxMounts);
  if (mounts.empty())
    return std::vector<migration::ExtMount>{};
  for (size_t i = 0; i < mounts.size(); ++i) {
    std::string path = fmt::format("{}/{}{}.tree", images, kKeyPrefix, i);
    mounts[i].archive.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!mounts[i].archive)
      return failf_errno("{}: creating the archive of tmpfs {}", path, mounts[i].destination);
  }
  UniqueFd mnt_ns(::open(fmt::format("/proc/{}/ns/mnt", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!mnt_ns)
    return failf_errno("/proc/{}/ns/mnt", pid);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("pipe for the tmpfs copy");
  UniqueFd report_read(p[0]), report_write(p[1]);
  pid_t child = ::fork();
  if (child < 0)
    return failf_errno("fork of the tmpfs copy");
  if (child == 0) {
    report_read.reset();
    save_in_child(mnt_ns.get(), mounts, report_write.get());
  }
  report_write.reset();
  auto report = read_fd(report_read.get(), "the tmpfs copy's report");
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::vector<bool> saved(mounts.size(), false);
  if (report)
    for (const auto &line : split(*report, '\n')) {
      size_t i = 0;
      auto space = line.find(' ');
      if (space == std::string::npos || std::sscanf(line.c_str(), "%zu", &i) != 1 || i >= mounts.size())
        continue;
      std::string what = line.substr(space + 1);
      if (what == "ok")
        saved[i] = true;
      else
        note(fmt::format("tmpfs {}: left to CRIU ({})", mounts[i].destination, what));
    }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    note(fmt::format("tmpfs copy: the child ended with status {:#x}", status));

  nlohmann::json list = nlohmann::json::array();
  std::vector<migration::ExtMount> ext;
  for (size_t i = 0; i < mounts.size(); ++i) {
    std::string key = fmt::format("{}{}", kKeyPrefix, i);
    if (!saved[i]) {
      ::unlink(fmt::format("{}/{}.tree", images, key).c_str());
      continue;
    }
    list.push_back({{"destination", mounts[i].destination},
                    {"key", key},
                    {"options", mounts[i].options},
                    {"flags", mounts[i].flags}});
    ext.push_back({mounts[i].destination, key});
  }
  if (!ext.empty())
    BH_CHECK(write_file_atomic(images + "/" + kTmpfsManifest,
                               nlohmann::json{{"version", 1}, {"mounts", list}}.dump(), 0600));
  return ext;
}

namespace {

struct ManifestMount {
  std::string key, options;
  unsigned long flags = 0;
};

Result<std::vector<ManifestMount>> read_manifest(const std::string &path) {
  auto text = BH_TRY(read_file(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("mounts") || !j["mounts"].is_array() ||
      j["mounts"].size() > kMaxMounts)
    return failf("{}: not a version 1 manifest of at most {} mounts", path, kMaxMounts);
  std::vector<ManifestMount> out;
  for (const auto &m : j["mounts"]) {
    std::string key = fmt::format("{}{}", kKeyPrefix, out.size());
    if (!m.is_object() || !m.contains("key") || m["key"] != key || !m.contains("options") ||
        !m["options"].is_string() || !m.contains("flags") || !m["flags"].is_array())
      return failf("{}: mount {} must be {{\"key\":\"{}\",\"options\":\"...\",\"flags\":[...]}}", path,
                   out.size(), key);
    ManifestMount mm;
    mm.key = key;
    mm.options = m["options"].get<std::string>();
    for (const auto &o : split(mm.options, ','))
      if (!o.empty() && !allowed_super_option(o))
        return failf("{}: {}: tmpfs option {:?} is not one a restore passes on", path, key, o);
    std::vector<std::string> words;
    for (const auto &f : m["flags"]) {
      if (!f.is_string() || !allowed_flag(f.get<std::string>()))
        return failf("{}: {}: unknown mount flag {}", path, key, f.dump());
      words.push_back(f.get<std::string>());
    }
    mm.flags = rootfs::parse_mount_options(words).flags;
    out.push_back(std::move(mm));
  }
  return out;
}

// Rebuilds `archive` into the directory `target` from a child in `cgroup_fd` (the table above).
Status fill(const std::string &archive, const std::string &target, int cgroup_fd) {
  UniqueFd in(::open(archive.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in)
    return failf_errno("restore: {}", archive);
  UniqueFd dir(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir)
    return failf_errno("restore: {}", target);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("restore: pipe for filling {}", target);
  UniqueFd err_read(p[0]), err_write(p[1]);
  CloneResult cloned = clone_child(0, cgroup_fd);
  if (cloned.pid < 0)
    return failf_errno("restore: starting the process that fills {}", target);
  if (cloned.pid == 0) {
    err_read.reset();
    if (cgroup_fd >= 0 && !cloned.in_cgroup && !write_file_at(cgroup_fd, "cgroup.procs", "0", O_WRONLY))
      ::_exit(2);
    auto done = rootfs::read_tree_archive(in.get(), dir.get());
    if (!done)
      (void)write_all(err_write.get(), done.error().text(), "error");
    ::_exit(done ? 0 : 1);
  }
  err_write.reset();
  auto text = read_fd(err_read.get(), "the fill's error");
  int status = 0;
  while (::waitpid(static_cast<pid_t>(cloned.pid), &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return {};
  if (text && !text->empty())
    return failf("restore: filling {} from {}: {}", target, archive, *text);
  return failf("restore: filling {} from {}: the process ended with status {:#x}", target, archive, status);
}

} // namespace

Result<TmpfsSources> TmpfsSources::prepare(const std::string &images, const std::string &state_dir,
                                           int cgroup_fd) {
  TmpfsSources out;
  std::string manifest = images + "/" + kTmpfsManifest;
  if (::access(manifest.c_str(), F_OK) < 0)
    return out;
  for (const auto &m : BH_TRY(read_manifest(manifest))) {
    unsigned long flags = m.flags & ~static_cast<unsigned long>(MS_RDONLY); // filled first
    auto made = RestoreMount::make(state_dir + "/criu-" + m.key, [&](const std::string &path) -> Status {
      if (::mount("tmpfs", path.c_str(), "tmpfs", flags, m.options.c_str()) < 0)
        return failf_errno("restore: mounting tmpfs ({}) on {}", m.options, path);
      return {};
    });
    RestoreMount mount = BH_TRY(std::move(made));
    BH_CHECK(fill(images + "/" + m.key + ".tree", mount.path(), cgroup_fd));
    // Per-mount flags go with the bind CRIU makes from this mount.
    if ((m.flags & MS_RDONLY) &&
        ::mount(nullptr, mount.path().c_str(), nullptr, MS_REMOUNT | MS_BIND | m.flags, nullptr) < 0)
      return failf_errno("restore: making {} read-only", mount.path());
    out.ext_.push_back({m.key, mount.path()});
    out.mounts_.push_back(std::move(mount));
  }
  return out;
}

} // namespace bulkhead::runtime
