#include "daemon/record_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

RecordStore::RecordStore(std::string root) : root_(std::move(root)) {}

ContainerPaths RecordStore::paths(const std::string &name) const {
  ContainerPaths p;
  p.dir = root_ + "/containers/" + name;
  p.record = p.dir + "/container.json";
  p.disk = p.dir + "/disk";
  p.disk_image = p.dir + "/disk.img";
  p.upper = p.disk + "/upper";
  p.work = p.disk + "/work";
  // Containers made before the storage backends kept upper and work directly in their directory.
  if (struct stat st{}; ::lstat((p.dir + "/upper").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    p.upper = p.dir + "/upper";
    p.work = p.dir + "/work";
  }
  p.bundle = p.dir + "/bundle";
  p.rootfs = p.bundle + "/rootfs";
  p.log = p.dir + "/console.log";
  p.monitor_state = p.dir + "/monitor.json";
  p.exit_file = p.dir + "/exit.json";
  p.monitor_log = p.dir + "/monitor.log";
  p.socket = root_ + "/sockets/" + name + ".sock";
  return p;
}

Status RecordStore::init_dirs() const {
  for (const auto &d :
       {root_, root_ + "/containers", root_ + "/templates", root_ + "/sockets", root_ + "/oci"}) {
    if (::mkdir(d.c_str(), 0711) < 0 && errno != EEXIST)
      return failf_errno("creating {}", d);
  }
  return {};
}

json to_json(const RuntimeStatus &s) {
  json j = {{"want_running", s.want_running},
            {"state", s.state},
            {"restarts", s.restarts},
            {"consecutive_failures", s.consecutive_failures},
            {"started_ms", s.started_unix_ms},
            {"monitor", {{"pid", s.monitor_pid}, {"start_time", s.monitor_start_time}}},
            {"init", {{"pid", s.init_pid}, {"start_time", s.init_start_time}}},
            {"last_exit",
             {{"code", s.last_exit.code}, {"signal", s.last_exit.signal}, {"at", s.last_exit.at_unix}}},
            {"error", s.error}};
  if (!s.fenced_by.empty())
    j["fenced_by"] = s.fenced_by;
  return j;
}

Result<RuntimeStatus> status_from_json(const json &j) {
  RuntimeStatus s;
  try {
    s.want_running = j.value("want_running", false);
    s.state = j.value("state", std::string("stopped"));
    s.restarts = j.value("restarts", 0);
    s.consecutive_failures = j.value("consecutive_failures", 0);
    s.started_unix_ms = j.value("started_ms", int64_t{0});
    if (j.contains("monitor")) {
      s.monitor_pid = j["monitor"].value("pid", 0);
      s.monitor_start_time = j["monitor"].value("start_time", uint64_t{0});
    }
    if (j.contains("init")) {
      s.init_pid = j["init"].value("pid", 0);
      s.init_start_time = j["init"].value("start_time", uint64_t{0});
    }
    if (j.contains("last_exit")) {
      s.last_exit.code = j["last_exit"].value("code", 0);
      s.last_exit.signal = j["last_exit"].value("signal", 0);
      s.last_exit.at_unix = j["last_exit"].value("at", int64_t{0});
    }
    s.error = j.value("error", std::string());
    s.fenced_by = j.value("fenced_by", std::string());
  } catch (const json::exception &e) {
    return fail(std::string("container status: ") + e.what(), EINVAL);
  }
  return s;
}

json to_json(const Protection &p) {
  return {{"standby", p.standby}, {"interval_ms", p.interval_ms}, {"mode", p.mode}};
}

Result<Protection> protection_from_json(const json &j) {
  Protection p;
  try {
    p.standby = j.value("standby", std::string());
    p.interval_ms = j.value("interval_ms", int64_t{0});
    p.mode = j.value("mode", std::string());
  } catch (const json::exception &e) {
    return fail(std::string("container protection: ") + e.what(), EINVAL);
  }
  return p;
}

Status RecordStore::save(const ContainerRecord &r) const {
  json j = {{"config", to_json(r.config)}, {"status", to_json(r.status)}};
  if (!r.protection.standby.empty())
    j["protection"] = to_json(r.protection);
  return write_file_durable(paths(r.config.name).record, j.dump(2) + "\n", 0600);
}

Result<ContainerRecord> RecordStore::load(const std::string &name) const {
  auto path = paths(name).record;
  std::string text = BH_TRY(read_file(path));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception &e) {
    return fail(path + ": " + e.what(), EINVAL);
  }
  if (!j.is_object() || !j.contains("config"))
    return fail(path + ": no \"config\" object", EINVAL);
  ContainerRecord r;
  r.config = BH_TRY(context(config_from_json(j["config"]), path));
  if (r.config.name != name)
    return fail(path + ": record names \"" + r.config.name + "\"", EINVAL);
  if (j.contains("status"))
    r.status = BH_TRY(context(status_from_json(j["status"]), path));
  if (j.contains("protection"))
    r.protection = BH_TRY(context(protection_from_json(j["protection"]), path));
  return r;
}

std::vector<ContainerRecord> RecordStore::load_all(std::vector<std::string> *bad) const {
  std::vector<ContainerRecord> out;
  std::string dir = root_ + "/containers";
  DIR *d = ::opendir(dir.c_str());
  if (!d)
    return out;
  while (dirent *e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name[0] == '.')
      continue;
    auto r = load(name);
    if (r)
      out.push_back(std::move(*r));
    else if (bad)
      bad->push_back(r.error().text());
  }
  ::closedir(d);
  return out;
}

namespace {

Status remove_children(int dfd, const std::string &path) {
  DIR *d = ::fdopendir(::dup(dfd));
  if (!d)
    return failf_errno("listing {}", path);
  Status result;
  while (dirent *e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..")
      continue;
    if (::unlinkat(dfd, name.c_str(), 0) == 0)
      continue;
    if (errno != EISDIR && errno != EPERM) {
      result = failf_errno("removing {}/{}", path, name);
      break;
    }
    UniqueFd child(::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) {
      result = failf_errno("opening {}/{}", path, name);
      break;
    }
    if (auto r = remove_children(child.get(), path + "/" + name); !r) {
      result = r;
      break;
    }
    if (::unlinkat(dfd, name.c_str(), AT_REMOVEDIR) < 0) {
      result = failf_errno("removing {}/{}", path, name);
      break;
    }
  }
  ::closedir(d);
  return result;
}

} // namespace

Status remove_tree(const std::string &path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT)
      return {};
    return failf_errno("opening {}", path);
  }
  BH_CHECK(remove_children(fd.get(), path));
  if (::rmdir(path.c_str()) < 0 && errno != ENOENT)
    return failf_errno("removing {}", path);
  return {};
}

Status RecordStore::remove(const std::string &name) const {
  auto p = paths(name);
  ::unlink(p.socket.c_str());
  return remove_tree(p.dir);
}

} // namespace bulkhead::daemon
