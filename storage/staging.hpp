// An import in progress: <templates>/.staging-NAME-XXXXXX/{rootfs,template.json}. It becomes
// <templates>/NAME by one rename when complete; destroyed on every other path (the destructor).
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "storage/template_store.hpp"

namespace bulkhead::storage {

inline constexpr std::string_view kStagingPrefix = ".staging-";

class Staging {
public:
  static Result<Staging> create(int templates_fd, const std::string &templates_dir, const std::string &name);
  Staging(Staging &&o) noexcept;
  Staging &operator=(Staging &&) = delete;
  ~Staging();

  int rootfs_fd() const { return rootfs_.get(); }
  std::string rootfs_path() const { return templates_dir_ + "/" + dir_name_ + "/rootfs"; }

  // Writes template.json, flushes the tree and renames the staging directory to NAME (EEXIST if a
  // concurrent import got there first).
  Status commit(const TemplateInfo &info);

private:
  Staging() = default;
  int templates_fd_ = -1; // borrowed
  std::string templates_dir_;
  std::string dir_name_; // ".staging-NAME-XXXXXX"
  std::string name_;
  UniqueFd dir_;    // O_RDONLY of the staging directory
  UniqueFd rootfs_; // O_RDONLY of its rootfs
  bool done_ = false;
};

class ImportContext;

// Creates (if asked) and opens <root>/templates.
Result<UniqueFd> open_templates_dir(const std::string &path, bool create);

// Detects the init, counts the files, writes template.json and commits the staging directory.
Result<TemplateInfo> finish_import(Staging &staging, const std::string &name, const std::string &source,
                                   ImportContext &ctx);

// Detaches every mount at or below `path` (deepest first): what an interrupted debootstrap leaves.
void detach_mounts_under(const std::string &path);

} // namespace bulkhead::storage
