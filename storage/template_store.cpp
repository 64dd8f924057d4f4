#include "storage/template_store.hpp"

#include <algorithm>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"
#include "storage/archive_source.hpp"
#include "storage/dir_source.hpp"
#include "storage/image_sources.hpp"
#include "storage/import_context.hpp"
#include "storage/init_detect.hpp"
#include "storage/metadata.hpp"
#include "storage/staging.hpp"
#include "storage/tree.hpp"

namespace bulkhead::storage {

namespace {

struct DirCloser {
  void operator()(DIR *d) const { ::closedir(d); }
};

std::vector<std::string> entries_of(const std::string &dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
  if (!d)
    return out;
  while (struct dirent *de = ::readdir(d.get())) {
    std::string_view n(de->d_name);
    if (n != "." && n != "..")
      out.emplace_back(n);
  }
  return out;
}

} // namespace

Result<UniqueFd> open_templates_dir(const std::string &path, bool create) {
  if (create) {
    // <root> may not exist yet on a first start; templates hold tenants' files: 0700.
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0)
      ::mkdir(path.substr(0, slash).c_str(), 0711);
    if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST)
      return failf_errno("creating {}", path);
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", path);
  return fd;
}

Result<TemplateInfo> finish_import(Staging &staging, const std::string &name, const std::string &source,
                                   ImportContext &ctx) {
  BH_CHECK(ctx.check_cancel());
  ctx.report("finishing", 0, 0, true);
  TemplateInfo info;
  info.name = name;
  info.source = source;
  info.created_unix = static_cast<int64_t>(::time(nullptr));
  InitInfo init = detect_init(staging.rootfs_fd());
  info.init = init.init;
  info.init_present = init.present;
  info.stop_signal = init.stop_signal;
  TreeCount count = BH_TRY(count_tree(staging.rootfs_fd()));
  info.size_bytes = count.size_bytes;
  info.files = count.files;
  BH_CHECK(ctx.check_cancel());
  BH_CHECK(staging.commit(info));
  ctx.report("done", info.size_bytes, info.size_bytes, true);
  return info;
}

TemplateStore::TemplateStore(std::string root) : dir_(std::move(root) + "/templates") {}

std::string TemplateStore::rootfs_path(const std::string &name) const {
  return dir_ + "/" + name + "/rootfs";
}

Result<TemplateInfo> TemplateStore::import(const std::string &name, const std::string &source,
                                           const ProgressFn &progress, const std::atomic<bool> *cancel) {
  BH_CHECK(validate_name("template", name));
  std::string what = fmt::format("importing template {} from {}", name, source);
  UniqueFd tdir = BH_TRY(context(open_templates_dir(dir_, true), what));
  struct stat st {};
  if (::fstatat(tdir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    return fail(fmt::format("template {} already exists", name), EEXIST);

  ImportContext ctx(progress, cancel);
  Staging staging = BH_TRY(context(Staging::create(tdir.get(), dir_, name), what));

  auto strip = [&](std::string_view prefix) { return source.substr(prefix.size()); };
  std::string recorded;
  Status r;
  if (source.starts_with("oci:")) {
    Extractor x(staging.rootfs_fd(), true);
    recorded = source;
    r = import_oci_layout(strip("oci:"), x, ctx);
  } else if (source.starts_with("docker-archive:")) {
    Extractor x(staging.rootfs_fd(), true);
    recorded = source;
    r = import_docker_archive(strip("docker-archive:"), x, ctx);
  } else {
    std::string path = source;
    if (source.starts_with("dir:") || source.starts_with("tar:"))
      path = source.substr(4);
    Extractor x(staging.rootfs_fd(), false);
    if (::stat(path.c_str(), &st) < 0)
      r = failf_errno("source {}", path);
    else if (S_ISDIR(st.st_mode) && !source.starts_with("tar:")) {
      recorded = "dir:" + path;
      r = import_directory(path, x, ctx);
    } else if (S_ISREG(st.st_mode) && !source.starts_with("dir:")) {
      recorded = "tar:" + path;
      r = import_tarball(path, x, ctx);
    } else {
      r = fail(
          fmt::format("source {}: not a directory, a tarball, oci:DIR[:TAG] or docker-archive:FILE", path),
          EINVAL);
    }
  }
  if (!r)
    return tl::unexpected(with_context(r.error(), what));
  return context(finish_import(staging, name, recorded, ctx), what);
}

Result<TemplateInfo> TemplateStore::import_entries(const std::string &name, const std::string &source,
                                                   const FillFn &fill, const ProgressFn &progress,
                                                   const std::atomic<bool> *cancel) {
  BH_CHECK(validate_name("template", name));
  std::string what = fmt::format("importing template {} from {}", name, source);
  UniqueFd tdir = BH_TRY(context(open_templates_dir(dir_, true), what));
  struct stat st {};
  if (::fstatat(tdir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    return fail(fmt::format("template {} already exists", name), EEXIST);
  ImportContext ctx(progress, cancel);
  Staging staging = BH_TRY(context(Staging::create(tdir.get(), dir_, name), what));
  Extractor x(staging.rootfs_fd(), false);
  BH_CHECK(context(fill(x), what));
  BH_CHECK(context(x.finish(), what));
  return context(finish_import(staging, name, source, ctx), what);
}

Result<std::vector<TemplateInfo>> TemplateStore::list() const {
  std::vector<TemplateInfo> out;
  for (const auto &n : entries_of(dir_)) {
    if (!validate_name("template", n))
      continue; // staging and removal leftovers
    auto info = get(n);
    if (info)
      out.push_back(std::move(*info));
  }
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.name < b.name; });
  return out;
}

Result<TemplateInfo> TemplateStore::get(const std::string &name) const {
  BH_CHECK(validate_name("template", name));
  std::string path = dir_ + "/" + name + "/template.json";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT)
      return fail(fmt::format("template {} does not exist", name), ENOENT);
    return failf_errno("opening {}", path);
  }
  std::string text = BH_TRY(read_fd(fd.get(), path));
  return info_from_json(text, path);
}

Status TemplateStore::remove(const std::string &name) {
  BH_CHECK(validate_name("template", name));
  UniqueFd tdir = BH_TRY(open_templates_dir(dir_, false));
  // First out of sight in one rename (list/get stop seeing it at once; a crash midway leaves a
  // .staging-* that sweep_staging removes), then deleted.
  std::string pattern = dir_ + "/" + std::string(kStagingPrefix) + name + "-rm-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return failf_errno("removing template {}: creating {}", name, pattern);
  std::string tmp = pattern.substr(dir_.size() + 1);
  if (::renameat(tdir.get(), name.c_str(), tdir.get(), tmp.c_str()) < 0) {
    int err = errno;
    ::unlinkat(tdir.get(), tmp.c_str(), AT_REMOVEDIR);
    if (err == ENOENT)
      return fail(fmt::format("template {} does not exist", name), ENOENT);
    return fail(fmt::format("removing template {}: renaming it away", name), err);
  }
  return context(remove_tree_at(tdir.get(), tmp), fmt::format("removing template {}", name));
}

void TemplateStore::sweep_staging() {
  auto tdir = open_templates_dir(dir_, false);
  if (!tdir)
    return;
  for (const auto &n : entries_of(dir_)) {
    if (!n.starts_with(kStagingPrefix))
      continue;
    detach_mounts_under(dir_ + "/" + n);
    (void)remove_tree_at(tdir->get(), n);
  }
}

} // namespace bulkhead::storage
