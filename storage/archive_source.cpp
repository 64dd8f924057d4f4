#include "storage/archive_source.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

void ArchiveFree::operator()(struct archive *a) const { archive_read_free(a); }

Result<ArchivePtr> new_tar_reader() {
  ArchivePtr a(archive_read_new());
  if (!a)
    return fail("allocating an archive reader", ENOMEM);
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_filter_all(a.get());
  return a;
}

Error archive_failure(struct archive *a, const std::string &what) {
  const char *msg = archive_error_string(a);
  int code = archive_errno(a);
  return Error{code > 0 ? code : EINVAL, fmt::format("{}: {}", what, msg ? msg : "unknown libarchive error")};
}

Result<Entry> to_entry(struct archive_entry *ae, const std::string &what) {
  Entry e;
  const char *path = archive_entry_pathname(ae);
  if (path == nullptr)
    path = archive_entry_pathname_utf8(ae);
  if (path == nullptr)
    return fail(fmt::format("{}: an entry has a name that cannot be decoded", what), EINVAL);
  e.path = path;

  if (const char *hl = archive_entry_hardlink(ae)) {
    e.kind = EntryKind::Hardlink;
    e.link = hl;
  } else {
    switch (archive_entry_filetype(ae)) {
    case AE_IFREG:
      e.kind = EntryKind::File;
      break;
    case AE_IFDIR:
      e.kind = EntryKind::Directory;
      break;
    case AE_IFLNK:
      e.kind = EntryKind::Symlink;
      if (const char *t = archive_entry_symlink(ae))
        e.link = t;
      break;
    case AE_IFIFO:
      e.kind = EntryKind::Fifo;
      break;
    case AE_IFCHR:
      e.kind = EntryKind::CharDevice;
      e.rdev = archive_entry_rdev(ae);
      break;
    case AE_IFBLK:
      e.kind = EntryKind::BlockDevice;
      break;
    case AE_IFSOCK:
      e.kind = EntryKind::Socket;
      break;
    default:
      return fail(fmt::format("entry {}: unknown file type", e.path), EINVAL);
    }
  }

  e.perm = archive_entry_perm(ae) & 07777;
  int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
  if (uid < 0 || gid < 0 || uid >= 0xffffffffLL || gid >= 0xffffffffLL)
    return fail(fmt::format("entry {}: owner {}:{} out of range", e.path, uid, gid), EINVAL);
  e.uid = static_cast<uid_t>(uid);
  e.gid = static_cast<gid_t>(gid);
  e.mtime = {archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
  e.atime = archive_entry_atime_is_set(ae) ? timespec{archive_entry_atime(ae), archive_entry_atime_nsec(ae)}
                                           : e.mtime;

  if (archive_entry_xattr_reset(ae) > 0) {
    const char *name = nullptr;
    const void *value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK && name != nullptr)
      e.xattrs.emplace_back(name, std::string(static_cast<const char *>(value), size));
  }
  return e;
}

namespace {

// Copies the current entry's data into fd, sparse holes included (pwrite at libarchive's offsets).
Status write_data(struct archive *a, int fd, int64_t size, const ImportContext &ctx,
                  const std::string &path) {
  for (;;) {
    BH_CHECK(ctx.check_cancel());
    const void *buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(a, &buf, &len, &offset);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return tl::unexpected(archive_failure(a, fmt::format("reading the data of {}", path)));
    BH_CHECK(pwrite_all(fd, buf, len, offset, path));
  }
  if (size > 0 && ::ftruncate(fd, size) < 0) // a trailing hole
    return failf_errno("sizing {}", path);
  return {};
}

} // namespace

Status extract_entries(struct archive *a, Extractor &x, ImportContext &ctx, const std::string &stage,
                       uint64_t total, const std::function<uint64_t()> &done, const std::string &what) {
  ctx.report(stage, 0, total, true);
  for (;;) {
    BH_CHECK(ctx.check_cancel());
    struct archive_entry *ae = nullptr;
    int r = archive_read_next_header(a, &ae);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return tl::unexpected(archive_failure(a, fmt::format("reading {}", what)));
    Entry e = BH_TRY(to_entry(ae, what));
    int64_t size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
    std::string path = e.path;
    auto data = [&](int fd) { return write_data(a, fd, size, ctx, path); };
    BH_CHECK(context(x.apply(e, data), what));
    ctx.report(stage, done(), total);
  }
  ctx.report(stage, done(), total, true);
  return {};
}

Status import_tarball(const std::string &file, Extractor &x, ImportContext &ctx) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening tarball {}", file);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0)
    return failf_errno("stat of tarball {}", file);
  ArchivePtr a = BH_TRY(new_tar_reader());
  if (archive_read_open_fd(a.get(), fd.get(), 64 * 1024) != ARCHIVE_OK)
    return tl::unexpected(archive_failure(a.get(), fmt::format("opening tarball {}", file)));
  auto done = [&] { return static_cast<uint64_t>(archive_filter_bytes(a.get(), -1)); };
  BH_CHECK(extract_entries(a.get(), x, ctx, "extracting", static_cast<uint64_t>(st.st_size), done,
                           fmt::format("tarball {}", file)));
  return x.finish();
}

} // namespace bulkhead::storage
