// Snapshots of containers' upper layers, kept under <root>/snapshots (outside the containers'
// directories, so outside any per-container disk quota):
//   NAME/SNAP/upper/          the copy of the upper layer, everything as-is (storage/upper_tree.hpp)
//   NAME/SNAP/memory/         a checkpoint's CRIU images (bulkheadctl checkpoint), when it has them
//   NAME/SNAP/snapshot.json   {name, id, created_at, state, size_bytes, files, memory?}
//   NAME/.staging-*           a snapshot or import in progress: renamed into place when complete,
//                             removed on failure, swept at daemon start (a crash mid-way)
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

// A directory being filled; removed by the destructor unless committed.
class SnapshotStaging {
public:
  SnapshotStaging(SnapshotStaging &&o) noexcept;
  SnapshotStaging &operator=(SnapshotStaging &&) = delete;
  ~SnapshotStaging();
  int upper_fd() const { return upper_.get(); }
  std::string path() const { return parent_ + "/" + dir_name_; }
  // Writes snapshot.json and renames the staging directory to SNAP (EEXIST when taken).
  Status commit(const std::string &snap, const nlohmann::json &meta);

private:
  friend class SnapshotStore;
  SnapshotStaging() = default;
  std::string parent_, dir_name_;
  UniqueFd parent_fd_, dir_fd_, upper_;
  bool done_ = false;
};

class SnapshotStore {
public:
  explicit SnapshotStore(std::string root); // <root>/snapshots

  std::string dir(const std::string &container) const { return dir_ + "/" + container; }
  std::string upper_path(const std::string &container, const std::string &snap) const {
    return dir(container) + "/" + snap + "/upper";
  }
  // A checkpoint's CRIU images (daemon/daemon_checkpoint.cpp), next to the upper copy.
  std::string memory_path(const std::string &container, const std::string &snap) const {
    return dir(container) + "/" + snap + "/memory";
  }
  bool exists(const std::string &container, const std::string &snap) const;
  Result<nlohmann::json> info(const std::string &container, const std::string &snap) const;
  Result<nlohmann::json> list(const std::string &container) const; // sorted by creation time
  Result<SnapshotStaging> stage(const std::string &container, const std::string &purpose);
  Status remove(const std::string &container, const std::string &snap);
  Status remove_all(const std::string &container);
  void sweep_staging();

private:
  std::string dir_;
};

} // namespace bulkhead::daemon
