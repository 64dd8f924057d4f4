#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "bulkhead/unique_fd.hpp"
#include "storage/archive_source.hpp"
#include "storage/image_sources.hpp"
#include "storage/resolve.hpp"

namespace bulkhead::storage {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxManifest = 16 << 20;

// The outer tar is read once per layer: tar has no index, and libarchive skips the data of the other
// members cheaply (it seeks when the file is uncompressed). Nothing is written to disk twice.
class Outer {
public:
  static Result<Outer> open(const std::string &file) {
    Outer o;
    o.file_ = file;
    o.fd_ = UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!o.fd_)
      return failf_errno("opening docker archive {}", file);
    o.a_ = BH_TRY(new_tar_reader());
    if (archive_read_open_fd(o.a_.get(), o.fd_.get(), 64 * 1024) != ARCHIVE_OK)
      return tl::unexpected(archive_failure(o.a_.get(), "opening docker archive " + file));
    return o;
  }

  // Advances to the member `path`, following symlink and hardlink members (older `docker save`
  // links identical layers). Returns the member's size.
  static Result<std::pair<Outer, int64_t>> open_member(const std::string &file, std::string path) {
    for (int hops = 0; hops < 8; ++hops) {
      Outer o = BH_TRY(open(file));
      for (;;) {
        struct archive_entry *ae = nullptr;
        int r = archive_read_next_header(o.a_.get(), &ae);
        if (r == ARCHIVE_EOF)
          return fail(fmt::format("docker archive {}: no member {}", file, path), ENOENT);
        if (r < ARCHIVE_WARN)
          return tl::unexpected(archive_failure(o.a_.get(), "reading docker archive " + file));
        const char *name = archive_entry_pathname(ae);
        auto clean = clean_relative_path(name ? name : "");
        if (!clean || *clean != path)
          continue;
        std::string next;
        if (const char *hl = archive_entry_hardlink(ae))
          next = BH_TRY(clean_relative_path(hl));
        else if (archive_entry_filetype(ae) == AE_IFLNK) {
          auto [parent, base] = split_last(path);
          const char *t = archive_entry_symlink(ae);
          next = BH_TRY(clean_relative_path(parent.empty() ? t : parent + "/" + t));
        } else if (archive_entry_filetype(ae) == AE_IFREG) {
          int64_t size = archive_entry_size(ae);
          return std::pair{std::move(o), size};
        } else {
          return fail(fmt::format("docker archive {}: member {} is not a file", file, path), EINVAL);
        }
        path = next;
        break;
      }
    }
    return fail(fmt::format("docker archive {}: too many links to {}", file, path), ELOOP);
  }

  struct archive *get() const {
    return a_.get();
  }

private:
  std::string file_;
  UniqueFd fd_;
  ArchivePtr a_;
};

struct MemberReader {
  struct archive *outer;
  uint64_t bytes = 0;
  std::vector<char> buf = std::vector<char>(128 * 1024);
};

la_ssize_t member_read(struct archive *a, void *client, const void **out) {
  auto *r = static_cast<MemberReader *>(client);
  la_ssize_t n = archive_read_data(r->outer, r->buf.data(), r->buf.size());
  if (n < 0) {
    archive_set_error(a, archive_errno(r->outer), "%s", archive_error_string(r->outer));
    return -1;
  }
  r->bytes += static_cast<uint64_t>(n);
  *out = r->buf.data();
  return n;
}

bool tag_matches(const json &image, const std::string &tag) {
  auto tags = image.find("RepoTags");
  if (tags == image.end() || !tags->is_array())
    return false;
  for (const auto &t : *tags) {
    if (!t.is_string())
      continue;
    std::string s = t.get<std::string>();
    if (s == tag || (s.size() > tag.size() && s.ends_with(":" + tag)))
      return true;
  }
  return false;
}

} // namespace

Status import_docker_archive(const std::string &ref, Extractor &x, ImportContext &ctx) {
  auto [file, tag] = BH_TRY(split_path_tag(ref, false));
  auto [mo, msize] = BH_TRY(Outer::open_member(file, "manifest.json"));
  if (msize < 0 || static_cast<size_t>(msize) > kMaxManifest)
    return fail(fmt::format("docker archive {}: manifest.json is too large", file), EINVAL);
  std::string text(static_cast<size_t>(msize), '\0');
  if (archive_read_data(mo.get(), text.data(), text.size()) != msize)
    return tl::unexpected(archive_failure(mo.get(), "reading manifest.json of " + file));
  json manifest = json::parse(text, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_array() || manifest.empty())
    return fail(fmt::format("docker archive {}: manifest.json is not a non-empty array", file), EINVAL);

  const json *image = nullptr;
  if (tag) {
    for (const auto &m : manifest)
      if (m.is_object() && tag_matches(m, *tag))
        image = &m;
    if (image == nullptr)
      return fail(fmt::format("docker archive {}: no image tagged {}", file, *tag), ENOENT);
  } else if (manifest.size() == 1) {
    image = &manifest[0];
  } else {
    return fail(fmt::format("docker archive {} holds {} images: name one (docker-archive:FILE:TAG)", file,
                            manifest.size()),
                EINVAL);
  }
  auto layers = image->find("Layers");
  if (!image->is_object() || layers == image->end() || !layers->is_array())
    return fail(fmt::format("docker archive {}: the image has no Layers array", file), EINVAL);

  size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    const json &lj = (*layers)[i];
    if (!lj.is_string())
      return fail(fmt::format("docker archive {}: layer {} is not a path", file, i + 1), EINVAL);
    std::string path = BH_TRY(context(clean_relative_path(lj.get<std::string>()), "docker archive " + file));
    auto [outer, size] = BH_TRY(Outer::open_member(file, path));
    MemberReader reader{outer.get()};
    ArchivePtr inner = BH_TRY(new_tar_reader());
    if (archive_read_open(inner.get(), &reader, nullptr, member_read, nullptr) != ARCHIVE_OK)
      return tl::unexpected(
          archive_failure(inner.get(), fmt::format("docker archive {}: layer {}", file, path)));
    x.begin_layer();
    BH_CHECK(extract_entries(
        inner.get(), x, ctx, fmt::format("layer {}/{}", i + 1, n), static_cast<uint64_t>(size),
        [&] { return reader.bytes; }, fmt::format("layer {}/{} ({})", i + 1, n, path)));
  }
  return x.finish();
}

} // namespace bulkhead::storage
