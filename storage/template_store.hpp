// Templates: the shared, read-only OS root filesystems that system containers are built from.
//
// Layout under <root>/templates/:
//   NAME/rootfs/        the template's files (overlay lowerdir of every container made from it)
//   NAME/template.json  metadata (TemplateInfo), written atomically
//   .staging-NAME-XXXXXX/  an import in progress; renamed to NAME/ only when complete, removed on
//                       any failure or cancel, and swept at daemon start (a crash mid-import)
// Imports never follow a symlink out of the staging rootfs and refuse absolute paths, `..`
// components and device nodes in archives (the container's /dev comes from the runtime).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

class Extractor;

struct TemplateInfo {
  std::string name;
  std::string source;              // what it was imported from ("dir:/x", "tar:/x.tar.xz", "oci:/d:tag",
                                   // "docker-archive:/f.tar", "debootstrap:bookworm")
  int64_t created_unix = 0;        // seconds
  uint64_t size_bytes = 0;         // sum of regular file sizes
  uint64_t files = 0;              // entries in rootfs
  std::string init = "/sbin/init"; // the template's init (argv[0] of a system container)
  bool init_present = true;        // false: /sbin/init does not resolve to a file in the rootfs (creating a
                                   // container from it will fail); init stays "/sbin/init" anyway
  std::string stop_signal;         // what that init expects for a clean shutdown: "SIGRTMIN+3" for
                                   // systemd, "SIGUSR2" (poweroff) for busybox init, else "SIGPWR"
};

// Progress of a long import: stage ("extracting", "layer 2/5", "copying", "debootstrap"),
// work done and total in bytes (total 0 when unknown).
struct Progress {
  std::string stage;
  uint64_t done = 0;
  uint64_t total = 0;
};
using ProgressFn = std::function<void(const Progress &)>;

class TemplateStore {
public:
  explicit TemplateStore(std::string root); // <root> is the daemon's --root; uses <root>/templates

  // SOURCE: a directory, a tarball (.tar .tar.gz .tgz .tar.xz .tar.zst .tar.bz2), "oci:DIR[:TAG]"
  // (OCI image layout; TAG matches org.opencontainers.image.ref.name, default "latest" or the only
  // manifest) or "docker-archive:FILE" (`docker save`). `cancel` is polled; when it becomes true the
  // import stops, cleans up and fails with ECANCELED. Fails with EEXIST if NAME exists.
  Result<TemplateInfo> import(const std::string &name, const std::string &source, const ProgressFn &progress,
                              const std::atomic<bool> *cancel = nullptr);
  // debootstrap --variant=minbase SUITE from `mirror` (empty: the first http(s) URI of the host's apt
  // sources), then trimmed for containers (no device nodes in /dev).
  Result<TemplateInfo> debootstrap(const std::string &name, const std::string &suite,
                                   const std::string &mirror, const ProgressFn &progress,
                                   const std::atomic<bool> *cancel = nullptr);
  // Makes template NAME from entries `fill` gives the Extractor (a container backup carrying its
  // template), with import()'s staging, checks and metadata; `source` is what info.source records.
  using FillFn = std::function<Status(Extractor &)>;
  Result<TemplateInfo> import_entries(const std::string &name, const std::string &source, const FillFn &fill,
                                      const ProgressFn &progress, const std::atomic<bool> *cancel = nullptr);
  Result<std::vector<TemplateInfo>> list() const;          // sorted by name
  Result<TemplateInfo> get(const std::string &name) const; // ENOENT: "template NAME does not exist"
  Status remove(const std::string &name);                  // the caller checks that no container uses it
  std::string rootfs_path(const std::string &name) const;
  // Removes leftovers of imports interrupted by a crash (.staging-*). Call it before any import starts
  // (at daemon start): an import in progress is a .staging-* directory too.
  void sweep_staging();

private:
  std::string dir_; // <root>/templates
};

// Template and container names: [a-z0-9][a-z0-9-]{0,62}.
Status validate_name(const std::string &kind, const std::string &name);

} // namespace bulkhead::storage
