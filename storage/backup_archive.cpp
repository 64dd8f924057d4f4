#include "storage/backup_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "storage/resolve.hpp"
#include "storage/sha256.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::storage {

using nlohmann::json;

namespace {

constexpr size_t kMaxJson = 16 << 20; // the manifest holds the deletion list: allow many paths

struct WriterFree {
  void operator()(struct archive *a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry *e) const { archive_entry_free(e); }
};

Status check_cancel(const std::atomic<bool> *cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed))
    return fail("cancelled", ECANCELED);
  return {};
}

Error write_failure(struct archive *a, const std::string &what) {
  const char *msg = archive_error_string(a);
  int code = archive_errno(a);
  return Error{code > 0 ? code : EIO, fmt::format("{}: {}", what, msg ? msg : "unknown libarchive error")};
}

Status set_filter(struct archive *a, const std::string &file) {
  auto ends = [&](const char *s) { return file.ends_with(s); };
  int r = ARCHIVE_OK;
  if (ends(".gz") || ends(".tgz"))
    r = archive_write_add_filter_gzip(a);
  else if (ends(".xz"))
    r = archive_write_add_filter_xz(a);
  else if (ends(".zst"))
    r = archive_write_add_filter_zstd(a);
  else if (ends(".bz2"))
    r = archive_write_add_filter_bzip2(a);
  if (r != ARCHIVE_OK)
    return tl::unexpected(write_failure(a, "choosing the compression for " + file));
  return {};
}

class Writer {
public:
  Writer(struct archive *a, const std::string &file, const std::atomic<bool> *cancel, const BytesFn &progress)
      : a_(a), file_(file), cancel_(cancel), progress_(progress) {}

  Status header(struct archive_entry *ae, const std::string &path) {
    if (archive_write_header(a_, ae) < ARCHIVE_WARN)
      return tl::unexpected(write_failure(a_, fmt::format("writing {} to {}", path, file_)));
    ++stats.entries;
    return {};
  }

  Status json_member(const char *name, const json &j) {
    std::string text = j.dump(2) + "\n";
    std::unique_ptr<struct archive_entry, EntryFree> ae(archive_entry_new());
    archive_entry_set_pathname(ae.get(), name);
    archive_entry_set_filetype(ae.get(), AE_IFREG);
    archive_entry_set_perm(ae.get(), 0600);
    archive_entry_set_size(ae.get(), static_cast<la_int64_t>(text.size()));
    archive_entry_set_mtime(ae.get(), ::time(nullptr), 0);
    BH_CHECK(header(ae.get(), name));
    if (archive_write_data(a_, text.data(), text.size()) != static_cast<la_ssize_t>(text.size()))
      return tl::unexpected(write_failure(a_, fmt::format("writing {} to {}", name, file_)));
    return {};
  }

  Status tree(const std::string &prefix, int root_fd, int base_fd) {
    return walk_upper(root_fd, {cancel_, base_fd}, [&](const Entry &e, int data_fd, uint64_t size) {
      return member(prefix, e, data_fd, size);
    });
  }

  ExportStats stats;

private:
  Status member(const std::string &prefix, const Entry &e, int data_fd, uint64_t size) {
    BH_CHECK(check_cancel(cancel_));
    std::string path = e.path.empty() ? prefix : prefix + "/" + e.path;
    std::unique_ptr<struct archive_entry, EntryFree> ae(archive_entry_new());
    archive_entry_set_pathname(ae.get(), path.c_str());
    archive_entry_set_perm(ae.get(), e.perm & 07777);
    archive_entry_set_uid(ae.get(), e.uid);
    archive_entry_set_gid(ae.get(), e.gid);
    archive_entry_set_mtime(ae.get(), e.mtime.tv_sec, e.mtime.tv_nsec);
    archive_entry_set_atime(ae.get(), e.atime.tv_sec, e.atime.tv_nsec);
    for (const auto &[k, v] : e.xattrs)
      archive_entry_xattr_add_entry(ae.get(), k.c_str(), v.data(), v.size());
    switch (e.kind) {
    case EntryKind::File:
      archive_entry_set_filetype(ae.get(), AE_IFREG);
      archive_entry_set_size(ae.get(), static_cast<la_int64_t>(size));
      break;
    case EntryKind::Directory:
      archive_entry_set_filetype(ae.get(), AE_IFDIR);
      break;
    case EntryKind::Symlink:
      archive_entry_set_filetype(ae.get(), AE_IFLNK);
      archive_entry_set_symlink(ae.get(), e.link.c_str());
      break;
    case EntryKind::Hardlink:
      archive_entry_set_filetype(ae.get(), AE_IFREG);
      archive_entry_set_hardlink(ae.get(), (prefix + "/" + e.link).c_str());
      archive_entry_set_size(ae.get(), 0);
      break;
    case EntryKind::Fifo:
      archive_entry_set_filetype(ae.get(), AE_IFIFO);
      break;
    case EntryKind::CharDevice:
      archive_entry_set_filetype(ae.get(), AE_IFCHR);
      archive_entry_set_rdev(ae.get(), e.rdev);
      break;
    case EntryKind::BlockDevice:
    case EntryKind::Socket:
      return {}; // never content of a layer worth keeping
    }
    BH_CHECK(header(ae.get(), path));
    if (e.kind != EntryKind::File)
      return {};
    // Exactly `size` bytes (the header says so): a file that grew meanwhile is cut, one that
    // shrank is padded with zeros, so the archive stays well-formed.
    uint64_t left = size;
    buf_.resize(1 << 20);
    while (left > 0) {
      BH_CHECK(check_cancel(cancel_));
      ssize_t n = ::read(data_fd, buf_.data(), std::min<uint64_t>(left, buf_.size()));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return failf_errno("reading {}", path);
      }
      if (n == 0) {
        std::fill(buf_.begin(), buf_.end(), '\0');
        n = static_cast<ssize_t>(std::min<uint64_t>(left, buf_.size()));
      }
      if (archive_write_data(a_, buf_.data(), static_cast<size_t>(n)) != n)
        return tl::unexpected(write_failure(a_, fmt::format("writing {} to {}", path, file_)));
      left -= static_cast<uint64_t>(n);
      stats.data_bytes += static_cast<uint64_t>(n);
      if (progress_)
        progress_(stats.data_bytes);
    }
    return {};
  }

  struct archive *a_;
  const std::string &file_;
  const std::atomic<bool> *cancel_;
  const BytesFn &progress_;
  std::vector<char> buf_;
};

} // namespace

Result<ExportStats> write_export(const std::string &file, json manifest, const ExportSource &src,
                                 const std::atomic<bool> *cancel, const BytesFn &progress) {
  if (src.base_fd >= 0)
    manifest["deletions"] = BH_TRY(deleted_paths(src.upper_fd, src.base_fd, cancel));
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return failf_errno("creating {}", file);
  bool keep = false;
  struct Remove {
    const std::string &f;
    bool &keep;
    ~Remove() {
      if (!keep)
        ::unlink(f.c_str());
    }
  } remove{file, keep};

  std::unique_ptr<struct archive, WriterFree> a(archive_write_new());
  if (!a)
    return fail("allocating an archive writer", ENOMEM);
  if (archive_write_set_format_pax(a.get()) != ARCHIVE_OK)
    return tl::unexpected(write_failure(a.get(), "choosing the pax format"));
  BH_CHECK(set_filter(a.get(), file));
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK)
    return tl::unexpected(write_failure(a.get(), "opening " + file));
  Writer w(a.get(), file, cancel, progress);
  BH_CHECK(w.json_member(kManifestName, manifest));
  if (src.template_fd >= 0)
    BH_CHECK(context(w.tree("template", src.template_fd, -1), "exporting the template"));
  BH_CHECK(context(w.tree("upper", src.upper_fd, src.base_fd), "exporting the upper layer"));
  BH_CHECK(w.json_member(kTrailerName, json{{"entries", w.stats.entries}}));
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return tl::unexpected(write_failure(a.get(), "finishing " + file));
  if (::fsync(fd.get()) < 0)
    return failf_errno("fsync of {}", file);
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0)
    w.stats.archive_bytes = static_cast<uint64_t>(st.st_size);
  keep = true;
  return w.stats;
}

Result<ExportReader> ExportReader::open(const std::string &file) {
  ExportReader r;
  r.file_ = file;
  r.fd_ = UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!r.fd_)
    return failf_errno("opening {}", file);
  struct stat st {};
  if (::fstat(r.fd_.get(), &st) < 0)
    return failf_errno("stat of {}", file);
  if (!S_ISREG(st.st_mode))
    return fail(file + " is not a regular file", EINVAL);
  r.file_size_ = static_cast<uint64_t>(st.st_size);
  r.a_ = BH_TRY(new_tar_reader());
  if (archive_read_open_fd(r.a_.get(), r.fd_.get(), 256 * 1024) != ARCHIVE_OK)
    return tl::unexpected(archive_failure(r.a_.get(), "opening " + file));
  const std::string not_ours =
      file + " is not a bulkhead container export (its first entry is not " + kManifestName + ")";
  if (!BH_TRY(r.next()) || r.current_path_ != kManifestName || archive_entry_filetype(r.current_) != AE_IFREG)
    return fail(not_ours, EINVAL);
  int64_t size = archive_entry_size(r.current_);
  if (size <= 0 || static_cast<size_t>(size) > kMaxJson)
    return fail(fmt::format("{}: the manifest's size {} is out of range", file, size), EINVAL);
  std::string text(static_cast<size_t>(size), '\0');
  if (archive_read_data(r.a_.get(), text.data(), text.size()) != static_cast<la_ssize_t>(size))
    return tl::unexpected(archive_failure(r.a_.get(), file + ": reading the manifest"));
  try {
    r.manifest_ = json::parse(text);
  } catch (const json::exception &ex) {
    return fail(fmt::format("{}: the manifest is not JSON: {}", file, ex.what()), EINVAL);
  }
  if (!r.manifest_.is_object() || r.manifest_.value("format", 0) != kExportFormat)
    return fail(
        fmt::format("{}: unsupported export format (this bulkheadd reads format {})", file, kExportFormat),
        EINVAL);
  r.current_ = nullptr;
  return r;
}

uint64_t ExportReader::bytes_read() const {
  return static_cast<uint64_t>(archive_filter_bytes(a_.get(), -1));
}

Result<bool> ExportReader::next() {
  if (current_ != nullptr)
    return true;
  if (at_end_)
    return false;
  struct archive_entry *ae = nullptr;
  int r = archive_read_next_header(a_.get(), &ae);
  if (r == ARCHIVE_EOF) {
    at_end_ = true;
    return false;
  }
  if (r < ARCHIVE_WARN)
    return tl::unexpected(archive_failure(a_.get(), "reading " + file_));
  const char *p = archive_entry_pathname(ae);
  if (p == nullptr)
    return fail(file_ + ": an entry has a name that cannot be decoded", EINVAL);
  current_path_ = BH_TRY(context(clean_relative_path(p), file_));
  current_ = ae;
  return true;
}

Status ExportReader::extract_prefix(const std::string &prefix, Extractor *x, const std::atomic<bool> *cancel,
                                    const BytesFn &progress, bool stop_at_other) {
  std::vector<char> buf;
  while (BH_TRY(next())) {
    BH_CHECK(check_cancel(cancel));
    bool ours = current_path_ == prefix || current_path_.starts_with(prefix + "/");
    if (!ours) {
      if (stop_at_other)
        return {};
      if (current_path_ == kTrailerName)
        break;
      return fail(fmt::format("{}: unexpected entry {} (expected {}/...)", file_, current_path_, prefix),
                  EINVAL);
    }
    Entry e = BH_TRY(to_entry(current_, file_));
    e.path = current_path_ == prefix ? std::string() : current_path_.substr(prefix.size() + 1);
    if (e.kind == EntryKind::Hardlink) {
      auto t = clean_relative_path(e.link);
      if (!t || !t->starts_with(prefix + "/"))
        return fail(fmt::format("{}: entry {}: hardlink target {} is outside {}/", file_, current_path_,
                                e.link, prefix),
                    EINVAL);
      e.link = t->substr(prefix.size() + 1);
    }
    int64_t size = archive_entry_size_is_set(current_) ? archive_entry_size(current_) : 0;
    std::string path = current_path_;
    DataFn data = [&](int out) -> Status {
      for (;;) {
        BH_CHECK(check_cancel(cancel));
        const void *block = nullptr;
        size_t len = 0;
        la_int64_t offset = 0;
        int r = archive_read_data_block(a_.get(), &block, &len, &offset);
        if (r == ARCHIVE_EOF)
          break;
        if (r < ARCHIVE_WARN)
          return tl::unexpected(
              archive_failure(a_.get(), fmt::format("{}: reading the data of {}", file_, path)));
        BH_CHECK(pwrite_all(out, block, len, offset, path));
        if (progress)
          progress(bytes_read());
      }
      if (size > 0 && ::ftruncate(out, size) < 0)
        return failf_errno("sizing {}", path);
      return {};
    };
    if (x != nullptr)
      BH_CHECK(context(x->apply(e, data), file_));
    // Consume what apply did not read (a hardlink's or a skipped entry's data), so truncation
    // anywhere is seen.
    if (archive_read_data_skip(a_.get()) < ARCHIVE_WARN)
      return tl::unexpected(archive_failure(a_.get(), fmt::format("{}: reading past {}", file_, path)));
    current_ = nullptr;
    ++entries_;
    if (progress)
      progress(bytes_read());
  }
  if (stop_at_other)
    return {};
  // The trailer must be there, last, and agree on the number of entries.
  if (current_ == nullptr || current_path_ != kTrailerName)
    return fail(fmt::format("{} is truncated: it ends before its trailer {}", file_, kTrailerName), EINVAL);
  int64_t size = archive_entry_size(current_);
  if (size <= 0 || size > 4096)
    return fail(fmt::format("{}: the trailer's size {} is out of range", file_, size), EINVAL);
  std::string text(static_cast<size_t>(size), '\0');
  if (archive_read_data(a_.get(), text.data(), text.size()) != static_cast<la_ssize_t>(size))
    return tl::unexpected(archive_failure(a_.get(), file_ + ": reading the trailer"));
  uint64_t expected = 0;
  try {
    expected = json::parse(text).at("entries").get<uint64_t>();
  } catch (const json::exception &ex) {
    return fail(fmt::format("{}: the trailer is not valid: {}", file_, ex.what()), EINVAL);
  }
  current_ = nullptr;
  if (expected != entries_ + 1) // + the manifest
    return fail(fmt::format("{}: the trailer counts {} entries but the archive has {}", file_, expected,
                            entries_ + 1),
                EINVAL);
  if (BH_TRY(next()))
    return fail(fmt::format("{}: entry {} after the trailer", file_, current_path_), EINVAL);
  return {};
}

Status ExportReader::extract_template(Extractor &x, const std::atomic<bool> *cancel,
                                      const BytesFn &progress) {
  return extract_prefix("template", &x, cancel, progress, true);
}

Status ExportReader::skip_template(const std::atomic<bool> *cancel, const BytesFn &progress) {
  return extract_prefix("template", nullptr, cancel, progress, true);
}

Status ExportReader::extract_upper(Extractor &x, const std::atomic<bool> *cancel, const BytesFn &progress) {
  BH_CHECK(extract_prefix("upper", &x, cancel, progress, false));
  return x.finish();
}

Result<std::string> tree_digest(int rootfs_fd, const std::atomic<bool> *cancel) {
  Sha256 h;
  BH_CHECK(walk_upper(rootfs_fd, {cancel, -1}, [&](const Entry &e, int, uint64_t size) -> Status {
    if (e.path.empty())
      return {}; // the root's times are the import's when the source had no "./" entry
    // Length-prefixed, so no path or link target can be read as another field.
    std::string line =
        fmt::format("{}:{} {} {:o} {}:{} {} {}.{} {}:{}\n", e.path.size(), e.path, static_cast<int>(e.kind),
                    e.perm, e.uid, e.gid, size, e.mtime.tv_sec, e.mtime.tv_nsec, e.link.size(), e.link);
    h.update(line.data(), line.size());
    return {};
  }));
  return "sha256:" + h.hex_digest();
}

Result<std::vector<std::string>> ExportReader::deletions() const {
  std::vector<std::string> out;
  if (!manifest_.contains("deletions"))
    return out;
  const auto &d = manifest_["deletions"];
  if (!d.is_array())
    return fail("the manifest's \"deletions\" must be an array of paths", EINVAL);
  for (const auto &p : d) {
    if (!p.is_string())
      return fail("the manifest's \"deletions\" must be an array of paths", EINVAL);
    out.push_back(p.get<std::string>());
  }
  return out;
}

} // namespace bulkhead::storage
