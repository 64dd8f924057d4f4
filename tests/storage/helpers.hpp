// Shared by the storage tests: temp dirs, archives written with libarchive on the fly, file reads.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "storage/template_store.hpp"

namespace bulkhead::storage::test {

inline std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string &path, const std::string &data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline bool exists(const std::string &path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline int sh(const std::string &cmd) { return std::system(cmd.c_str()); }

class TempDir {
public:
  TempDir() {
    std::string pattern = "/tmp/bulkhead-storage-test-XXXXXX";
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { sh("rm -rf '" + path_ + "'"); }
  const std::string &path() const { return path_; }
  std::string operator/(const std::string &rel) const { return path_ + "/" + rel; }

private:
  std::string path_;
};

// Staging leftovers in <root>/templates (must be none after any import, good or bad).
inline std::vector<std::string> staging_dirs(const std::string &root) {
  std::vector<std::string> out;
  std::string cmd = "ls -A '" + root + "/templates' 2>/dev/null | grep '^.staging' > '" + root + "/.ls'";
  sh(cmd);
  std::istringstream in(slurp(root + "/.ls"));
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  ::unlink((root + "/.ls").c_str());
  return out;
}

enum class Compression { None, Gzip, Xz, Zstd, Bzip2 };

// Writes a pax tar with exactly the entries asked for (including the malicious ones no tar tool
// would produce).
class TarBuilder {
public:
  explicit TarBuilder(std::string path, Compression c = Compression::None) : path_(std::move(path)) {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    switch (c) {
    case Compression::None:
      break;
    case Compression::Gzip:
      archive_write_add_filter_gzip(a_);
      break;
    case Compression::Xz:
      archive_write_add_filter_xz(a_);
      break;
    case Compression::Zstd:
      archive_write_add_filter_zstd(a_);
      break;
    case Compression::Bzip2:
      archive_write_add_filter_bzip2(a_);
      break;
    }
    EXPECT_EQ(archive_write_open_filename(a_, path_.c_str()), ARCHIVE_OK) << archive_error_string(a_);
  }
  ~TarBuilder() { close(); }
  void close() {
    if (a_ == nullptr)
      return;
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
  }

  TarBuilder &file(const std::string &p, const std::string &data, mode_t mode = 0644, int uid = 0,
                   int gid = 0, time_t mtime = 1700000000) {
    auto *e = entry(p, AE_IFREG, mode, uid, gid, mtime);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    write(e, data);
    return *this;
  }
  TarBuilder &dir(const std::string &p, mode_t mode = 0755, int uid = 0, int gid = 0) {
    auto *e = entry(p, AE_IFDIR, mode, uid, gid, 1600000000);
    write(e, "");
    return *this;
  }
  TarBuilder &symlink(const std::string &p, const std::string &target) {
    auto *e = entry(p, AE_IFLNK, 0777, 0, 0, 1700000000);
    archive_entry_set_symlink(e, target.c_str());
    write(e, "");
    return *this;
  }
  TarBuilder &hardlink(const std::string &p, const std::string &target) {
    auto *e = entry(p, AE_IFREG, 0644, 0, 0, 1700000000);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    write(e, "");
    return *this;
  }
  TarBuilder &chardev(const std::string &p, int major, int minor) {
    auto *e = entry(p, AE_IFCHR, 0666, 0, 0, 1700000000);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    write(e, "");
    return *this;
  }
  TarBuilder &xattr(const std::string &p, const std::string &name, const std::string &value) {
    auto *e = entry(p, AE_IFREG, 0644, 0, 0, 1700000000);
    archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    archive_entry_set_size(e, 0);
    write(e, "");
    return *this;
  }

private:
  struct archive_entry *entry(const std::string &p, unsigned type, mode_t mode, int uid, int gid,
                              time_t mtime) {
    auto *e = archive_entry_new();
    archive_entry_set_pathname(e, p.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, mtime, 0);
    return e;
  }
  void write(struct archive_entry *e, const std::string &data) {
    EXPECT_EQ(archive_write_header(a_, e), ARCHIVE_OK) << archive_error_string(a_);
    if (!data.empty())
      archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
  }

  std::string path_;
  struct archive *a_ = nullptr;
};

inline std::string make_busybox_rootfs(const std::string &dir) {
  EXPECT_EQ(sh(std::string(BULKHEAD_BUSYBOX_ROOTFS_SCRIPT) + " '" + dir + "'"), 0);
  return dir;
}

// A rootfs tarball with busybox: the common "good" input.
inline void write_busybox_tar(const std::string &tar_path, Compression c) {
  TarBuilder t(tar_path, c);
  t.dir("./").dir("bin").dir("sbin").dir("etc", 0755).dir("home/user", 0750, 1000, 1000);
  t.file("bin/busybox", slurp("/bin/busybox"), 0755);
  t.symlink("bin/sh", "busybox").symlink("sbin/init", "../bin/busybox");
  t.file("etc/hostname", "tmpl\n", 0644).file("bin/suid", "x", 04755);
  t.file("home/user/notes", "hello\n", 0600, 1000, 1000);
  t.hardlink("etc/hostname-link", "etc/hostname");
}

} // namespace bulkhead::storage::test
