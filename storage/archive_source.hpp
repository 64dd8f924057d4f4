// Reading tar streams with libarchive (every format variant and compression it detects) and feeding
// their entries to an Extractor. libarchive only reads here; writing is the Extractor's job.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "bulkhead/result.hpp"
#include "storage/extractor.hpp"
#include "storage/import_context.hpp"

struct archive;
struct archive_entry;

namespace bulkhead::storage {

struct ArchiveFree {
  void operator()(struct archive *a) const;
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// A reader for tar (ustar, pax, GNU) behind any compression filter libarchive can detect.
Result<ArchivePtr> new_tar_reader();

// "what: <libarchive's message>" with libarchive's errno (EINVAL when it has none).
Error archive_failure(struct archive *a, const std::string &what);

// The Extractor's view of an archive entry (path not yet cleaned: Extractor::apply does that).
Result<Entry> to_entry(struct archive_entry *ae, const std::string &what);

// Extracts every entry of an opened reader. `done` reports the bytes consumed so far (for progress).
Status extract_entries(struct archive *a, Extractor &x, ImportContext &ctx, const std::string &stage,
                       uint64_t total, const std::function<uint64_t()> &done, const std::string &what);

// A tarball on disk (.tar, .tar.gz/.tgz, .tar.xz, .tar.zst, .tar.bz2: detected from the content).
Status import_tarball(const std::string &file, Extractor &x, ImportContext &ctx);

} // namespace bulkhead::storage
