#include "daemon/snapshot_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/record_store.hpp"
#include "storage/template_store.hpp"
#include "storage/tree.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr std::string_view kStaging = ".staging-";

std::vector<std::string> names_in(const std::string &dir) {
  std::vector<std::string> out;
  DIR *d = ::opendir(dir.c_str());
  if (d == nullptr)
    return out;
  while (struct dirent *de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..")
      out.push_back(n);
  }
  ::closedir(d);
  return out;
}

Status mkdir_p(const std::string &path) {
  if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", path);
  return {};
}

} // namespace

SnapshotStaging::SnapshotStaging(SnapshotStaging &&o) noexcept
    : parent_(std::move(o.parent_)), dir_name_(std::move(o.dir_name_)), parent_fd_(std::move(o.parent_fd_)),
      dir_fd_(std::move(o.dir_fd_)), upper_(std::move(o.upper_)), done_(o.done_) {
  o.done_ = true;
}

SnapshotStaging::~SnapshotStaging() {
  if (done_ || dir_name_.empty())
    return;
  upper_.reset();
  dir_fd_.reset();
  (void)storage::remove_tree_at(parent_fd_.get(), dir_name_);
}

Status SnapshotStaging::commit(const std::string &snap, const json &meta) {
  std::string where = parent_ + "/" + dir_name_;
  BH_CHECK(write_file_durable(where + "/snapshot.json", meta.dump(2) + "\n", 0600));
  // A snapshot is what a restore after a crash relies on: flush it whole before it appears.
  if (::syncfs(dir_fd_.get()) < 0)
    return failf_errno("syncing the filesystem of {}", where);
  if (::renameat2(parent_fd_.get(), dir_name_.c_str(), parent_fd_.get(), snap.c_str(), RENAME_NOREPLACE) <
      0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      return fail(fmt::format("snapshot {} already exists", snap), EEXIST);
    return failf_errno("renaming {} to {}", where, snap);
  }
  done_ = true;
  ::fsync(parent_fd_.get());
  return {};
}

SnapshotStore::SnapshotStore(std::string root) : dir_(std::move(root) + "/snapshots") {}

bool SnapshotStore::exists(const std::string &container, const std::string &snap) const {
  struct stat st {};
  return ::lstat((dir(container) + "/" + snap).c_str(), &st) == 0;
}

Result<json> SnapshotStore::info(const std::string &container, const std::string &snap) const {
  std::string path = dir(container) + "/" + snap + "/snapshot.json";
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == ENOENT)
      return fail(fmt::format("container {} has no snapshot \"{}\"", container, snap), ENOENT);
    return tl::unexpected(text.error());
  }
  try {
    return json::parse(*text);
  } catch (const json::exception &ex) {
    return fail(fmt::format("{}: {}", path, ex.what()), EIO);
  }
}

Result<json> SnapshotStore::list(const std::string &container) const {
  json out = json::array();
  for (const auto &n : names_in(dir(container))) {
    if (!storage::validate_name("snapshot", n))
      continue; // staging directories
    if (auto i = info(container, n))
      out.push_back(*i);
  }
  std::sort(out.begin(), out.end(), [](const json &a, const json &b) {
    return a.value("created_at", int64_t{0}) < b.value("created_at", int64_t{0});
  });
  return out;
}

Result<SnapshotStaging> SnapshotStore::stage(const std::string &container, const std::string &purpose) {
  BH_CHECK(mkdir_p(dir_));
  BH_CHECK(mkdir_p(dir(container)));
  SnapshotStaging s;
  s.parent_ = dir(container);
  std::string pattern = s.parent_ + "/" + std::string(kStaging) + purpose + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return failf_errno("creating a staging directory in {}", s.parent_);
  s.dir_name_ = pattern.substr(s.parent_.size() + 1);
  s.parent_fd_ = UniqueFd(::open(s.parent_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s.parent_fd_)
    return failf_errno("opening {}", s.parent_);
  s.dir_fd_ = UniqueFd(
      ::openat(s.parent_fd_.get(), s.dir_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s.dir_fd_)
    return failf_errno("opening {}", pattern);
  if (::mkdirat(s.dir_fd_.get(), "upper", 0755) < 0)
    return failf_errno("creating {}/upper", pattern);
  s.upper_ = UniqueFd(::openat(s.dir_fd_.get(), "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s.upper_)
    return failf_errno("opening {}/upper", pattern);
  return s;
}

Status SnapshotStore::remove(const std::string &container, const std::string &snap) {
  if (!exists(container, snap))
    return fail(fmt::format("container {} has no snapshot \"{}\"", container, snap), ENOENT);
  return remove_tree(dir(container) + "/" + snap);
}

Status SnapshotStore::remove_all(const std::string &container) { return remove_tree(dir(container)); }

void SnapshotStore::sweep_staging() {
  for (const auto &c : names_in(dir_))
    for (const auto &n : names_in(dir(c)))
      if (n.starts_with(kStaging))
        (void)remove_tree(dir(c) + "/" + n);
}

} // namespace bulkhead::daemon
