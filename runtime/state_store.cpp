#include "runtime/state_store.hpp"

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <utility>

#include "bulkhead/io.hpp"
#include "oci/parse.hpp"

namespace bulkhead::runtime {

namespace {

constexpr const char *kStateFile = "state.json";

Status mkdir_p(const std::string &path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos + 1);
    if (next == std::string::npos)
      next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST)
      return failf_errno("creating state directory {}", cur);
    if (next == path.size())
      break;
    pos = next;
  }
  return {};
}

Status lock_dir(int fd, const std::string &path) {
  while (::flock(fd, LOCK_EX) < 0)
    if (errno != EINTR)
      return failf_errno("locking {}", path);
  return {};
}

std::string container_not_found(const std::string &id) {
  return fmt::format("container {:?} does not exist", id);
}

} // namespace

std::string now_rfc3339() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", std::string_view(buf, n), ts.tv_nsec);
}

std::string record_json(const ContainerRecord &rec) {
  nlohmann::json j = {
      {"id", rec.id},
      {"bundle", rec.bundle},
      {"rootfs", rec.rootfs},
      {"created", rec.created},
      {"owner", rec.owner},
      {"annotations", rec.annotations},
      {"pid", rec.init.pid},
      {"pid_start_time", rec.init.start_time},
      {"creating", rec.creating},
      {"cgroup_mount", rec.cgroup_mount},
      {"cgroup_path", rec.cgroup_path},
      {"cgroup_driver", rec.cgroup_driver},
      {"systemd_unit", rec.systemd_unit},
      {"has_pid_namespace", rec.has_pid_namespace},
      {"hooks", oci::hooks_to_json(rec.hooks)},
  };
  return j.dump();
}

namespace {

// Whole numbers in the field's range only: nlohmann converts a float or an out-of-range number
// with a plain cast, undefined behaviour for "pid": 1e30 in an edited or corrupt record (UBSan in
// tests/fuzz/fuzz_state, on a hand-written seed).
template <class T>
Result<T> record_integer(const nlohmann::json &j, const char *key, const std::string &where) {
  const auto &v = j.at(key);
  if (v.is_number_unsigned()) {
    if (auto u = v.get<uint64_t>(); std::in_range<T>(u))
      return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    if (auto i = v.get<int64_t>(); std::in_range<T>(i))
      return static_cast<T>(i);
  }
  return failf("{}: corrupt state: {} must be an integer of {} bits, not {}", where, key, sizeof(T) * 8,
               v.dump());
}

} // namespace

Result<ContainerRecord> parse_record(std::string_view text, const std::string &where) {
  try {
    auto j = nlohmann::json::parse(text);
    ContainerRecord r;
    r.id = j.at("id").get<std::string>();
    r.bundle = j.at("bundle").get<std::string>();
    r.rootfs = j.at("rootfs").get<std::string>();
    r.created = j.at("created").get<std::string>();
    r.owner = j.value("owner", "");
    r.annotations = j.value("annotations", std::map<std::string, std::string>{});
    r.init.pid = BH_TRY(record_integer<pid_t>(j, "pid", where));
    r.init.start_time = BH_TRY(record_integer<uint64_t>(j, "pid_start_time", where));
    r.creating = j.at("creating").get<bool>();
    r.cgroup_mount = j.value("cgroup_mount", "");
    r.cgroup_path = j.value("cgroup_path", "");
    r.cgroup_driver = j.value("cgroup_driver", "");
    r.systemd_unit = j.value("systemd_unit", "");
    r.has_pid_namespace = j.value("has_pid_namespace", false);
    if (j.contains("hooks"))
      r.hooks = BH_TRY(oci::hooks_from_json(j["hooks"]));
    return r;
  } catch (const nlohmann::json::exception &e) {
    return failf("{}: corrupt state: {}", where, e.what());
  }
}

Status ContainerDir::save(const ContainerRecord &rec) const {
  return write_file_atomic_at(dir_.get(), kStateFile, record_json(rec), 0600);
}

Status ContainerDir::save_first(const ContainerRecord &rec) const {
  return write_file_at(dir_.get(), kStateFile, record_json(rec), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                       0600);
}

Result<ContainerRecord> ContainerDir::load() const {
  auto text = read_file_at(dir_.get(), kStateFile);
  if (!text)
    return fail(fmt::format("{}/{}", path_, kStateFile), text.error().code);
  return parse_record(*text, fmt::format("{}/{}", path_, kStateFile));
}

Status ContainerDir::remove() const {
  UniqueFd iter(::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!iter)
    return failf_errno("opening {}", path_);
  DIR *d = ::fdopendir(iter.release());
  if (!d)
    return failf_errno("listing {}", path_);
  while (struct dirent *e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..")
      continue;
    if (::unlinkat(dir_.get(), e->d_name, 0) < 0 && errno != ENOENT) {
      auto err = failf_errno("removing {}/{}", path_, name);
      ::closedir(d);
      return err;
    }
  }
  ::closedir(d);
  if (::rmdir(path_.c_str()) < 0 && errno != ENOENT)
    return failf_errno("removing {}", path_);
  return {};
}

Result<ContainerDir> StateStore::create(const std::string &id) const {
  BH_CHECK(mkdir_p(root_, 0711));
  std::string path = root_ + "/" + id;
  if (::mkdir(path.c_str(), 0711) < 0) {
    if (errno == EEXIST)
      return failf("container {:?} already exists", id);
    return failf_errno("creating state directory {}", path);
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd)
    return failf_errno("opening {}", path);
  BH_CHECK(lock_dir(fd.get(), path));
  return ContainerDir(path, std::move(fd));
}

Result<ContainerDir> StateStore::open_unlocked(const std::string &id) const {
  std::string path = root_ + "/" + id;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT)
      return fail(container_not_found(id), 0);
    return failf_errno("opening {}", path);
  }
  return ContainerDir(path, std::move(fd));
}

bool StateStore::may_exist(const std::string &id) const {
  struct stat st {};
  return ::lstat((root_ + "/" + id).c_str(), &st) == 0 || errno != ENOENT;
}

Result<ContainerDir> StateStore::open(const std::string &id) const {
  ContainerDir dir = BH_TRY(open_unlocked(id));
  BH_CHECK(lock_dir(dir.fd(), dir.path()));
  // The holder before us may have deleted the container while we waited.
  struct stat st {};
  if (::fstatat(dir.fd(), kStateFile, &st, 0) < 0 && errno == ENOENT)
    return fail(container_not_found(id), 0);
  return dir;
}

Result<std::vector<std::string>> StateStore::list_ids() const {
  std::vector<std::string> ids;
  DIR *d = ::opendir(root_.c_str());
  if (!d) {
    if (errno == ENOENT)
      return ids;
    return failf_errno("listing {}", root_);
  }
  while (struct dirent *e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.empty() || name[0] == '.')
      continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
      continue;
    ids.emplace_back(name);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool lock_is_free(const ContainerDir &dir) {
  UniqueFd probe(::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!probe)
    return false;
  if (::flock(probe.get(), LOCK_EX | LOCK_NB) < 0)
    return false;
  ::flock(probe.get(), LOCK_UN);
  return true;
}

} // namespace bulkhead::runtime
