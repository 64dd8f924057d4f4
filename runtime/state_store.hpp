// One directory per container under --root: state.json (written temp + rename), start.sock while
// the container is "created", and an flock on the directory itself so concurrent commands on one
// ID are serialised.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"
#include "runtime/process_id.hpp"

namespace bulkhead::runtime {

struct ContainerRecord {
  std::string id;
  std::string bundle;
  std::string rootfs;
  std::string created; // RFC 3339
  std::string owner;
  std::map<std::string, std::string> annotations;
  ProcessId init;
  bool creating = true; // until create returns successfully
  std::string cgroup_mount;
  std::string cgroup_path;
  // "systemd" when --systemd-cgroup made the cgroup as a transient scope (systemd_unit), so later
  // commands (update, delete) go through systemd too; "" for the cgroupfs driver.
  std::string cgroup_driver;
  std::string systemd_unit;
  bool has_pid_namespace = false;
  oci::Hooks hooks;
};

// state.json: the record as stored, and back. parse_record takes text anyone who can write the
// state directory may have changed, so every malformed record is an error naming `where`.
std::string record_json(const ContainerRecord &rec);
Result<ContainerRecord> parse_record(std::string_view text, const std::string &where);

class ContainerDir {
public:
  ContainerDir() = default;
  ContainerDir(std::string path, UniqueFd dir) : path_(std::move(path)), dir_(std::move(dir)) {}

  const std::string &path() const { return path_; }
  int fd() const { return dir_.get(); }

  Status save(const ContainerRecord &rec) const;
  // The first record of a new container dir: written in place (O_EXCL), with no temp file and
  // rename, since nothing can hold an older version. A reader racing with it (under the lock
  // that create holds) may see it empty, as before it could find it missing.
  Status save_first(const ContainerRecord &rec) const;
  Result<ContainerRecord> load() const;
  // Removes everything in the directory and the directory itself.
  Status remove() const;

private:
  std::string path_;
  UniqueFd dir_; // holds the flock
};

class StateStore {
public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}
  const std::string &root() const { return root_; }

  // mkdir of <root>/<id>; "already exists" when taken. Returned locked.
  Result<ContainerDir> create(const std::string &id) const;
  // Opens and locks an existing container; "does not exist" otherwise.
  Result<ContainerDir> open(const std::string &id) const;
  // Opens without locking (for `state`/`list`, which must not wait behind a slow create).
  Result<ContainerDir> open_unlocked(const std::string &id) const;
  Result<std::vector<std::string>> list_ids() const;
  // False only when <root>/<id> is certainly absent (ENOENT), not on other errors.
  bool may_exist(const std::string &id) const;

private:
  std::string root_;
};

// True when no process holds the container's lock (a record stuck in "creating" then belongs to a
// create that died).
bool lock_is_free(const ContainerDir &dir);

std::string now_rfc3339();

} // namespace bulkhead::runtime
