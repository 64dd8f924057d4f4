#include "rootfs/tree_archive.hpp"

// The format (little-endian), one entry after another in depth-first pre-order, so that a reader
// holds only the directories of the current path open:
//   magic  "BHTREE1\n"
//   entry  u8 type, u8 flags, u16 name length, u32 parent index, u32 mode (permission and set-id
//          bits), u32 uid, u32 gid, u64 rdev, i64 mtime seconds, u32 mtime nanoseconds, the name;
//          then by type: a file's u64 size and its data extents (u64 length, u64 offset, the bytes)
//          ended by a length of 0; a symlink's u32 target length and target; a hard link's u32
//          index of the file entry it links to; nothing for the others.
//   end    an entry of type kEnd (all other fields 0): a file without one was cut short.
// Entry 0 is the root (no name, parent 0); every other entry's parent is an earlier directory.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::rootfs {

namespace {

constexpr char kMagic[8] = {'B', 'H', 'T', 'R', 'E', 'E', '1', '\n'};
constexpr size_t kHeaderSize = 40;
constexpr size_t kBufferSize = 1 << 20;
constexpr uint64_t kMaxFileSize = uint64_t{1} << 40; // no tmpfs holds more
constexpr uint8_t kHasLinks = 1;                     // flags: a file other entries link to

enum Type : uint8_t { kDir = 1, kFile, kSymlink, kHardLink, kChar, kBlock, kFifo, kEnd = 0xff };

struct Header {
  uint8_t type = 0, flags = 0;
  uint16_t name_len = 0;
  uint32_t parent = 0, mode = 0, uid = 0, gid = 0;
  uint64_t rdev = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
};

template <class T> void put(std::string &buf, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    buf.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
}

template <class T> T get(const unsigned char *p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}

struct DirCloser {
  void operator()(DIR *d) const { ::closedir(d); }
};
using DirStream = std::unique_ptr<DIR, DirCloser>;

// ---- writing ----

class Writer {
public:
  explicit Writer(int out) : out_(out) { buf_.reserve(kBufferSize + 65536); }

  Status run(int root_dir) {
    struct stat st {};
    if (::fstat(root_dir, &st) < 0)
      return failf_errno("tree archive: stat of the root");
    if (!S_ISDIR(st.st_mode))
      return fail("tree archive: the root is not a directory", ENOTDIR);
    dev_ = st.st_dev;
    buf_.append(kMagic, sizeof kMagic);
    header(kDir, 0, 0, "", st);
    BH_CHECK(walk(root_dir, 0, "", 1));
    Header end;
    end.type = kEnd;
    write_header(end, "");
    return flush();
  }

  TreeArchiveStats stats;

private:
  uint32_t header(Type type, uint8_t flags, uint32_t parent, std::string_view name, const struct stat &st) {
    Header h;
    h.type = type;
    h.flags = flags;
    h.name_len = static_cast<uint16_t>(name.size());
    h.parent = parent;
    h.mode = st.st_mode & 07777;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    h.rdev = st.st_rdev;
    h.mtime_sec = st.st_mtim.tv_sec;
    h.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    write_header(h, name);
    return static_cast<uint32_t>(stats.entries++);
  }

  void write_header(const Header &h, std::string_view name) {
    put(buf_, h.type);
    put(buf_, h.flags);
    put(buf_, h.name_len);
    put(buf_, h.parent);
    put(buf_, h.mode);
    put(buf_, h.uid);
    put(buf_, h.gid);
    put(buf_, h.rdev);
    put(buf_, h.mtime_sec);
    put(buf_, h.mtime_nsec);
    buf_.append(name);
  }

  Status flush() {
    BH_CHECK(write_all(out_, buf_, "tree archive"));
    buf_.clear();
    return {};
  }

  Status maybe_flush() { return buf_.size() >= kBufferSize ? flush() : Status{}; }

  Status walk(int dir_fd, uint32_t index, const std::string &path, int depth) {
    if (depth > kTreeArchiveMaxDepth)
      return failf("tree archive: {} is deeper than {} levels", path, kTreeArchiveMaxDepth);
    int iter = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (iter < 0)
      return failf_errno("tree archive: reading directory /{}", path);
    DirStream d(::fdopendir(iter));
    if (!d) {
      ::close(iter);
      return failf_errno("tree archive: reading directory /{}", path);
    }
    while (struct dirent *e = ::readdir(d.get())) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..")
        continue;
      std::string child = path.empty() ? std::string(name) : path + "/" + std::string(name);
      struct stat st {};
      if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return failf_errno("tree archive: stat of /{}", child);
      if (st.st_dev != dev_)
        continue; // another filesystem mounted here: not this tree's
      if (S_ISDIR(st.st_mode)) {
        uint32_t sub = header(kDir, 0, index, name, st);
        UniqueFd fd(::openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd)
          return failf_errno("tree archive: opening directory /{}", child);
        BH_CHECK(walk(fd.get(), sub, child, depth + 1));
      } else if (S_ISREG(st.st_mode)) {
        BH_CHECK(file(dir_fd, index, name, child, st));
      } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t len = ::readlinkat(dir_fd, e->d_name, target, sizeof target);
        if (len < 0)
          return failf_errno("tree archive: readlink of /{}", child);
        if (static_cast<size_t>(len) >= sizeof target)
          return failf("tree archive: symlink /{}: target longer than {} bytes", child, PATH_MAX - 1);
        header(kSymlink, 0, index, name, st);
        put(buf_, static_cast<uint32_t>(len));
        buf_.append(target, static_cast<size_t>(len));
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        header(S_ISCHR(st.st_mode) ? kChar : S_ISBLK(st.st_mode) ? kBlock : kFifo, 0, index, name, st);
      } // sockets: nothing to keep, a restored server binds anew
      BH_CHECK(maybe_flush());
    }
    return {};
  }

  Status file(int dir_fd, uint32_t parent, std::string_view name, const std::string &path,
              const struct stat &st) {
    if (st.st_nlink > 1) {
      auto seen = linked_.find(st.st_ino);
      if (seen != linked_.end()) {
        header(kHardLink, 0, parent, name, st);
        put(buf_, seen->second);
        return {};
      }
    }
    std::string n(name);
    // O_NOATIME: the copy must not change what it copies; O_NONBLOCK: never wait on a lease.
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    UniqueFd fd(::openat(dir_fd, n.c_str(), flags | O_NOATIME));
    if (!fd && errno == EPERM)
      fd.reset(::openat(dir_fd, n.c_str(), flags));
    if (!fd)
      return failf_errno("tree archive: opening /{}", path);
    struct stat now {};
    if (::fstat(fd.get(), &now) < 0 || !S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
      return failf("tree archive: /{} changed while it was read", path);
    uint32_t index = header(kFile, st.st_nlink > 1 ? kHasLinks : 0, parent, name, st);
    if (st.st_nlink > 1)
      linked_.emplace(st.st_ino, index);
    auto size = static_cast<uint64_t>(st.st_size);
    put(buf_, size);
    uint64_t pos = 0;
    while (pos < size) {
      off_t data = ::lseek(fd.get(), static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0 && errno == ENXIO)
        break; // only a hole is left
      off_t hole = data < 0 ? -1 : ::lseek(fd.get(), data, SEEK_HOLE);
      if (data < 0 || hole < 0) { // no SEEK_DATA here: all of it is data
        data = static_cast<off_t>(pos);
        hole = static_cast<off_t>(size);
      }
      uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
      uint64_t len = end - static_cast<uint64_t>(data);
      put(buf_, len);
      put(buf_, static_cast<uint64_t>(data));
      for (uint64_t at = static_cast<uint64_t>(data); at < end;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(end - at, 1 << 20));
        size_t old = buf_.size();
        buf_.resize(old + want);
        ssize_t got = ::pread(fd.get(), buf_.data() + old, want, static_cast<off_t>(at));
        if (got < 0 && errno == EINTR) {
          buf_.resize(old);
          continue;
        }
        if (got <= 0)
          return got < 0 ? failf_errno("tree archive: reading /{}", path)
                         : failf("tree archive: /{} shrank while it was read", path);
        buf_.resize(old + static_cast<size_t>(got));
        at += static_cast<uint64_t>(got);
        stats.data_bytes += static_cast<uint64_t>(got);
        BH_CHECK(maybe_flush());
      }
      pos = end;
    }
    put(buf_, uint64_t{0});
    return {};
  }

  int out_;
  dev_t dev_ = 0;
  std::string buf_;
  std::unordered_map<ino_t, uint32_t> linked_;
};

// ---- reading ----

class In {
public:
  explicit In(int fd) : fd_(fd), buf_(kBufferSize) {}

  // Exactly `len` bytes, or an error naming what was being read.
  Status read(void *to, size_t len, std::string_view what) {
    auto *dst = static_cast<unsigned char *>(to);
    while (len > 0) {
      if (pos_ == end_) {
        ssize_t n = ::read(fd_, buf_.data(), buf_.size());
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0)
          return failf_errno("tree archive: reading {}", what);
        if (n == 0)
          return failf("tree archive: cut short in {}", what);
        pos_ = 0;
        end_ = static_cast<size_t>(n);
      }
      size_t take = std::min(len, end_ - pos_);
      std::memcpy(dst, buf_.data() + pos_, take);
      pos_ += take;
      dst += take;
      len -= take;
    }
    return {};
  }

  template <class T> Result<T> number(std::string_view what) {
    unsigned char b[sizeof(T)];
    BH_CHECK(read(b, sizeof b, what));
    return get<T>(b);
  }

private:
  int fd_;
  std::vector<unsigned char> buf_;
  size_t pos_ = 0, end_ = 0;
};

Result<UniqueFd> open_beneath(int root, const std::string &path, uint64_t flags) {
  struct open_how how {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = ::syscall(SYS_openat2, root, path.empty() ? "." : path.c_str(), &how, sizeof how);
  if (fd < 0)
    return failf_errno("tree archive: opening /{}", path);
  return UniqueFd(static_cast<int>(fd));
}

class Reader {
public:
  explicit Reader(int in) : in_(in) {}

  Status run(int root_dir) {
    char magic[sizeof kMagic];
    BH_CHECK(in_.read(magic, sizeof magic, "the header"));
    if (std::memcmp(magic, kMagic, sizeof magic) != 0)
      return fail("tree archive: not a tree archive (bad magic)", EINVAL);
    Header root = BH_TRY(header());
    if (root.type != kDir || root.name_len != 0 || root.parent != 0)
      return fail("tree archive: the first entry is not the root directory", EINVAL);
    UniqueFd root_fd(::fcntl(root_dir, F_DUPFD_CLOEXEC, 3));
    if (!root_fd)
      return failf_errno("tree archive: duplicating the root fd");
    if (::fchown(root_fd.get(), root.uid, root.gid) < 0 || ::fchmod(root_fd.get(), root.mode) < 0)
      return failf_errno("tree archive: owner {}:{} and mode {:o} of the root", root.uid, root.gid,
                         root.mode);
    root_ = root_dir;
    types_.push_back(kDir);
    stack_.push_back({0, std::move(root_fd), "", root});
    ++stats.entries;
    for (;;) {
      Header h = BH_TRY(header());
      if (h.type == kEnd)
        break;
      BH_CHECK(entry(h));
    }
    while (!stack_.empty())
      BH_CHECK(close_top());
    return {};
  }

  TreeArchiveStats stats;

private:
  struct OpenDir {
    uint32_t index;
    UniqueFd fd;
    std::string path;
    Header h; // its time is set once its last entry is made
  };

  Result<Header> header() {
    unsigned char b[kHeaderSize];
    BH_CHECK(in_.read(b, sizeof b, "an entry's header"));
    Header h;
    h.type = b[0];
    h.flags = b[1];
    h.name_len = get<uint16_t>(b + 2);
    h.parent = get<uint32_t>(b + 4);
    h.mode = get<uint32_t>(b + 8);
    h.uid = get<uint32_t>(b + 12);
    h.gid = get<uint32_t>(b + 16);
    h.rdev = get<uint64_t>(b + 20);
    h.mtime_sec = get<int64_t>(b + 28);
    h.mtime_nsec = get<uint32_t>(b + 36);
    if (h.mode & ~07777u)
      return failf("tree archive: entry {} has mode {:o}", types_.size(), h.mode);
    if (h.mtime_nsec >= 1000000000u)
      return failf("tree archive: entry {} has a time of {} ns", types_.size(), h.mtime_nsec);
    return h;
  }

  Result<std::string> name(const Header &h) {
    if (h.name_len == 0 || h.name_len > NAME_MAX)
      return failf("tree archive: entry {} has a name of {} bytes", types_.size(), h.name_len);
    std::string n(h.name_len, '\0');
    BH_CHECK(in_.read(n.data(), n.size(), "a name"));
    if (n == "." || n == ".." || n.find('/') != std::string::npos || n.find('\0') != std::string::npos)
      return failf("tree archive: entry {} has the name {:?}", types_.size(), n);
    return n;
  }

  Status close_top() {
    OpenDir &top = stack_.back();
    struct timespec t[2] = {{0, UTIME_OMIT}, {top.h.mtime_sec, static_cast<long>(top.h.mtime_nsec)}};
    Status s;
    if (::futimens(top.fd.get(), t) < 0)
      s = failf_errno("tree archive: setting the time of /{}", top.path);
    stack_.pop_back();
    return s;
  }

  Status owner_mode_time(int dir, const std::string &name, const std::string &path, const Header &h,
                         bool link) {
    if (::fchownat(dir, name.c_str(), h.uid, h.gid, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("tree archive: chown of /{} to {}:{}", path, h.uid, h.gid);
    // After chown, which clears set-id bits. A symlink's mode means nothing.
    if (!link && ::fchmodat(dir, name.c_str(), h.mode, 0) < 0)
      return failf_errno("tree archive: chmod of /{} to {:o}", path, h.mode);
    struct timespec t[2] = {{0, UTIME_OMIT}, {h.mtime_sec, static_cast<long>(h.mtime_nsec)}};
    if (::utimensat(dir, name.c_str(), t, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("tree archive: setting the time of /{}", path);
    return {};
  }

  Status entry(const Header &h) {
    uint32_t index = static_cast<uint32_t>(types_.size());
    if (h.parent >= index || types_[h.parent] != kDir)
      return failf("tree archive: entry {}'s parent {} is not an earlier directory", index, h.parent);
    std::string n = BH_TRY(name(h));
    while (!stack_.empty() && stack_.back().index != h.parent)
      BH_CHECK(close_top());
    if (stack_.empty())
      return failf("tree archive: entry {} comes after its parent {}'s directory was closed", index,
                   h.parent);
    int dir = stack_.back().fd.get();
    std::string path = stack_.back().path.empty() ? n : stack_.back().path + "/" + n;
    types_.push_back(h.type);
    ++stats.entries;
    switch (h.type) {
    case kDir: {
      if (static_cast<int>(stack_.size()) >= kTreeArchiveMaxDepth)
        return failf("tree archive: /{} is deeper than {} levels", path, kTreeArchiveMaxDepth);
      if (::mkdirat(dir, n.c_str(), 0700) < 0)
        return failf_errno("tree archive: mkdir /{}", path);
      BH_CHECK(owner_mode_time(dir, n, path, h, false));
      UniqueFd fd(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd)
        return failf_errno("tree archive: opening /{}", path);
      stack_.push_back({index, std::move(fd), path, h});
      return {};
    }
    case kFile:
      BH_CHECK(file(dir, n, path));
      if (h.flags & kHasLinks)
        linked_.emplace(index, path);
      return owner_mode_time(dir, n, path, h, false);
    case kSymlink: {
      uint32_t len = BH_TRY(in_.number<uint32_t>("a symlink's length"));
      if (len == 0 || len >= PATH_MAX)
        return failf("tree archive: symlink /{} has a target of {} bytes", path, len);
      std::string target(len, '\0');
      BH_CHECK(in_.read(target.data(), len, "a symlink's target"));
      if (target.find('\0') != std::string::npos)
        return failf("tree archive: symlink /{} has a NUL in its target", path);
      if (::symlinkat(target.c_str(), dir, n.c_str()) < 0)
        return failf_errno("tree archive: symlink /{}", path);
      return owner_mode_time(dir, n, path, h, true);
    }
    case kHardLink: {
      uint32_t to = BH_TRY(in_.number<uint32_t>("a hard link's target"));
      auto target = linked_.find(to);
      if (target == linked_.end())
        return failf("tree archive: hard link /{} to entry {}, which is no linked file", path, to);
      auto slash = target->second.rfind('/');
      std::string parent = slash == std::string::npos ? "" : target->second.substr(0, slash);
      std::string base = slash == std::string::npos ? target->second : target->second.substr(slash + 1);
      UniqueFd from = BH_TRY(open_beneath(root_, parent, O_PATH | O_DIRECTORY));
      if (::linkat(from.get(), base.c_str(), dir, n.c_str(), 0) < 0)
        return failf_errno("tree archive: hard link /{} to /{}", path, target->second);
      return {};
    }
    case kChar:
    case kBlock:
    case kFifo: {
      mode_t kind = h.type == kChar ? S_IFCHR : h.type == kBlock ? S_IFBLK : S_IFIFO;
      if (::mknodat(dir, n.c_str(), kind | 0600, h.type == kFifo ? 0 : static_cast<dev_t>(h.rdev)) < 0)
        return failf_errno("tree archive: mknod /{}", path);
      return owner_mode_time(dir, n, path, h, false);
    }
    default:
      return failf("tree archive: entry {} (/{}) has the unknown type {}", index, path, h.type);
    }
  }

  Status file(int dir, const std::string &n, const std::string &path) {
    uint64_t size = BH_TRY(in_.number<uint64_t>("a file's size"));
    if (size > kMaxFileSize)
      return failf("tree archive: /{} claims {} bytes", path, size);
    UniqueFd fd(::openat(dir, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
      return failf_errno("tree archive: creating /{}", path);
    uint64_t done = 0;
    std::vector<unsigned char> chunk;
    for (;;) {
      uint64_t len = BH_TRY(in_.number<uint64_t>("an extent's length"));
      if (len == 0)
        break;
      uint64_t off = BH_TRY(in_.number<uint64_t>("an extent's offset"));
      if (off < done || off > size || len > size - off)
        return failf("tree archive: /{}: extent of {} bytes at {} outside [{}, {})", path, len, off, done,
                     size);
      for (uint64_t at = off; at < off + len;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(off + len - at, 1 << 20));
        chunk.resize(want);
        BH_CHECK(in_.read(chunk.data(), want, "a file's data"));
        BH_CHECK(pwrite_all(fd.get(), chunk.data(), want, static_cast<off_t>(at), "tree archive: /" + path));
        at += want;
        stats.data_bytes += want;
      }
      done = off + len;
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0)
      return failf_errno("tree archive: setting the size of /{} to {}", path, size);
    return {};
  }

  In in_;
  int root_ = -1;
  std::vector<uint8_t> types_;
  std::vector<OpenDir> stack_;
  std::unordered_map<uint32_t, std::string> linked_;
};

} // namespace

Result<TreeArchiveStats> write_tree_archive(int root_dir, int out_fd) {
  Writer w(out_fd);
  BH_CHECK(w.run(root_dir));
  return w.stats;
}

Result<TreeArchiveStats> read_tree_archive(int in_fd, int root_dir) {
  Reader r(in_fd);
  BH_CHECK(r.run(root_dir));
  return r.stats;
}

} // namespace bulkhead::rootfs
