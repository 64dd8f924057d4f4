// Container backups: one tar archive (pax, so xattrs and nanosecond times survive; compressed when
// the file name ends in .gz/.tgz, .xz, .zst or .bz2) holding, in this order:
//   bulkhead-export.json   the manifest (JSON, first): format, kind ("full" | "incremental"), the
//                          container record, the template reference, "deletions" (incremental)
//   template/...           the template's rootfs (only with --with-template)
//   upper/...              the upper layer, or only what changed since the base snapshot
//   bulkhead-export.end    the trailer (JSON, last): the number of entries before it
// An archive without the trailer as its last entry is truncated and refused whole.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "storage/archive_source.hpp"
#include "storage/extractor.hpp"

namespace bulkhead::storage {

inline constexpr const char *kManifestName = "bulkhead-export.json";
inline constexpr const char *kTrailerName = "bulkhead-export.end";
inline constexpr int kExportFormat = 1;

using BytesFn = std::function<void(uint64_t)>;

struct ExportSource {
  int upper_fd = -1;    // the tree exported under upper/
  int base_fd = -1;     // incremental: the base snapshot's tree (only differences are written)
  int template_fd = -1; // with the template: its rootfs, written under template/
};

struct ExportStats {
  uint64_t entries = 0;
  uint64_t data_bytes = 0; // file contents written (before compression)
  uint64_t archive_bytes = 0;
};

// Writes `manifest` (plus "deletions" for an incremental export) and the trees to a new file
// (O_EXCL: an existing file is never overwritten); on any failure or cancel the file is removed.
Result<ExportStats> write_export(const std::string &file, nlohmann::json manifest, const ExportSource &src,
                                 const std::atomic<bool> *cancel, const BytesFn &progress);

// Reading side: open() reads and checks the manifest; the entries then come in archive order.
class ExportReader {
public:
  static Result<ExportReader> open(const std::string &file);
  const nlohmann::json &manifest() const { return manifest_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t bytes_read() const;

  // Extracts the template/ entries (they come first) into `x` (a template staging rootfs). Stops
  // at the first entry that is not under template/, which the next call sees.
  Status extract_template(Extractor &x, const std::atomic<bool> *cancel, const BytesFn &progress);
  // Reads past the template/ entries (the template exists here already).
  Status skip_template(const std::atomic<bool> *cancel, const BytesFn &progress);
  // Extracts the upper/ entries into `x` (made with overlay_upper), then checks the trailer. An
  // entry anywhere else (or a template/ entry here) is refused.
  Status extract_upper(Extractor &x, const std::atomic<bool> *cancel, const BytesFn &progress);
  // An incremental export's "deletions" (paths below the upper layer); none in a full one.
  Result<std::vector<std::string>> deletions() const;

private:
  ExportReader() = default;
  Result<bool> next(); // advances; false at the end of the archive
  Status extract_prefix(const std::string &prefix, Extractor *x, const std::atomic<bool> *cancel,
                        const BytesFn &progress, bool stop_at_other);

  std::string file_;
  UniqueFd fd_;
  ArchivePtr a_;
  struct archive_entry *current_ = nullptr; // the entry read but not yet consumed
  std::string current_path_;                // its cleaned path
  bool at_end_ = false;
  uint64_t entries_ = 0; // entries after the manifest, consumed so far
  uint64_t file_size_ = 0;
  nlohmann::json manifest_;
};

// A digest of a template's rootfs from its metadata (paths, types, modes, owners, sizes, mtimes,
// link targets; the root directory itself left out), cheap enough to compute at every export and import: two
// hosts that imported the same template from the same source agree on it.
Result<std::string> tree_digest(int rootfs_fd, const std::atomic<bool> *cancel);

} // namespace bulkhead::storage
