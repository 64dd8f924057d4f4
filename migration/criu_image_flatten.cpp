#include "migration/criu_image_flatten.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::migration {

namespace {

// criu/include/magic.h, criu/include/pagemap.h.
constexpr uint32_t kImgCommonMagic = 0x54564319;
constexpr uint32_t kPagemapMagic = 0x56084025;
constexpr uint32_t kPeParent = 1u << 0;
constexpr uint32_t kPeLazy = 1u << 1;
constexpr uint32_t kPePresent = 1u << 2;
constexpr uint64_t kPageSize = 4096;
// A chain longer than this is a loop of links or not a replication chain.
constexpr int kMaxLevels = 4096;
// The most one copy_file_range moves: a cancellation is seen between two (8 MiB: milliseconds on
// hardware, about 0.1 s under TCG).
constexpr uint64_t kCopyChunk = uint64_t{8} << 20;

struct Entry {
  uint64_t vaddr = 0, nr = 0;
  uint32_t flags = 0;
  bool had_nr_pages = false;
  uint64_t offset = 0; // in the pages image, for a present entry
};

struct Pagemap {
  uint32_t pages_id = 0;
  std::vector<Entry> entries;
};

Result<std::string> read_all_at(int dirfd, const std::string &name, const std::string &what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", what);
  return read_fd(fd.get(), what);
}

uint32_t le32(const std::string &s, size_t at) {
  return uint32_t{static_cast<unsigned char>(s[at])} | uint32_t{static_cast<unsigned char>(s[at + 1])} << 8 |
         uint32_t{static_cast<unsigned char>(s[at + 2])} << 16 |
         uint32_t{static_cast<unsigned char>(s[at + 3])} << 24;
}

void put_le32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_varint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// One protobuf message of varint fields only (all that pagemap_head and pagemap_entry have):
// field number -> value. Any other wire type is an error.
Result<std::vector<std::pair<uint32_t, uint64_t>>> varint_fields(std::string_view msg,
                                                                 const std::string &what) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  size_t i = 0;
  auto varint = [&](uint64_t &v) -> bool {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= msg.size())
        return false;
      auto b = static_cast<unsigned char>(msg[i++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;
  };
  while (i < msg.size()) {
    uint64_t key = 0, value = 0;
    if (!varint(key))
      return fail(what + ": a truncated field key", EPROTO);
    if ((key & 7) != 0)
      return fail(fmt::format("{}: field {} is not a varint (wire type {})", what, key >> 3, key & 7),
                  EPROTO);
    if (!varint(value))
      return fail(fmt::format("{}: field {} is truncated", what, key >> 3), EPROTO);
    out.emplace_back(static_cast<uint32_t>(key >> 3), value);
  }
  return out;
}

Result<Pagemap> parse_pagemap(const std::string &data, const std::string &what) {
  if (data.size() < 8 || le32(data, 0) != kImgCommonMagic || le32(data, 4) != kPagemapMagic)
    return fail(what + ": not a CRIU pagemap image (its magic)", EPROTO);
  Pagemap pm;
  bool head = true;
  uint64_t offset = 0;
  for (size_t at = 8; at < data.size();) {
    if (data.size() - at < 4)
      return fail(what + ": a truncated record length", EPROTO);
    const uint32_t len = le32(data, at);
    at += 4;
    if (data.size() - at < len)
      return fail(what + ": a truncated record", EPROTO);
    auto fields = BH_TRY(varint_fields(std::string_view(data).substr(at, len), what));
    at += len;
    if (head) {
      bool has_id = false;
      for (auto [f, v] : fields) {
        if (f != 1)
          return fail(fmt::format("{}: an unknown pagemap_head field {}", what, f), EPROTO);
        pm.pages_id = static_cast<uint32_t>(v);
        has_id = true;
      }
      if (!has_id)
        return fail(what + ": a pagemap_head without pages_id", EPROTO);
      head = false;
      continue;
    }
    Entry e;
    bool has_vaddr = false, has_compat = false, has_flags = false, in_parent = false;
    uint64_t compat = 0;
    for (auto [f, v] : fields) {
      switch (f) {
      case 1:
        e.vaddr = v, has_vaddr = true;
        break;
      case 2:
        compat = v, has_compat = true;
        break;
      case 3:
        in_parent = v != 0;
        break;
      case 4:
        e.flags = static_cast<uint32_t>(v), has_flags = true;
        break;
      case 5:
        e.nr = v, e.had_nr_pages = true;
        break;
      default:
        return fail(fmt::format("{}: an unknown pagemap_entry field {}", what, f), EPROTO);
      }
    }
    if (!has_vaddr || !has_compat)
      return fail(what + ": a pagemap_entry without vaddr or compat_nr_pages", EPROTO);
    // As CRIU reads an older image (init_compat_pagemap_entry).
    if (in_parent)
      e.flags |= kPeParent;
    else if (!has_flags)
      e.flags = kPePresent;
    if (!e.had_nr_pages)
      e.nr = compat;
    const bool parent = e.flags & kPeParent, present = e.flags & kPePresent;
    if ((e.flags & ~(kPeParent | kPeLazy | kPePresent)) || parent == present)
      return fail(fmt::format("{}: an entry at {:#x} with flags {:#x} (neither in the parent nor present)",
                              what, e.vaddr, e.flags),
                  EPROTO);
    if (e.vaddr % kPageSize || e.nr == 0 || e.nr > (~uint64_t{0} - e.vaddr) / kPageSize)
      return fail(fmt::format("{}: a bad entry at {:#x} ({} pages)", what, e.vaddr, e.nr), EPROTO);
    if (!pm.entries.empty()) {
      const Entry &prev = pm.entries.back();
      if (e.vaddr < prev.vaddr + prev.nr * kPageSize)
        return fail(fmt::format("{}: entries out of order at {:#x}", what, e.vaddr), EPROTO);
    }
    if (present) {
      e.offset = offset;
      offset += e.nr * kPageSize;
    }
    pm.entries.push_back(e);
  }
  if (head)
    return fail(what + ": no pagemap_head", EPROTO);
  return pm;
}

// One directory of the chain: its fd and name, its parent's name (empty for the base).
struct Level {
  std::string name;
  UniqueFd dir;
};

// The parent of `dir` in `root`: "../NAME" only, NAME a directory of root (never a way out).
Result<std::optional<std::string>> parent_of(int dir, const std::string &what) {
  char target[512];
  ssize_t n = ::readlinkat(dir, "parent", target, sizeof target - 1);
  if (n < 0 && errno == ENOENT)
    return std::optional<std::string>();
  if (n < 0)
    return failf_errno("reading {}/parent", what);
  std::string t(target, static_cast<size_t>(n));
  const std::string name = t.rfind("../", 0) == 0 ? t.substr(3) : std::string();
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    return fail(fmt::format("{}/parent points to \"{}\", not to a directory beside it", what, t), EPROTO);
  return std::optional<std::string>(name);
}

Result<std::vector<Level>> open_chain(int root_fd, const std::string &name) {
  std::vector<Level> chain;
  std::set<std::string> seen;
  std::optional<std::string> next = name;
  while (next) {
    if (!seen.insert(*next).second || chain.size() >= static_cast<size_t>(kMaxLevels))
      return fail(fmt::format("the image chain of {} loops at {}", name, *next), ELOOP);
    UniqueFd dir(::openat(root_fd, next->c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir)
      return failf_errno("opening image directory {} (in the chain of {})", *next, name);
    auto parent = BH_TRY(parent_of(dir.get(), *next));
    chain.push_back({*next, std::move(dir)});
    next = parent;
  }
  return chain;
}

// The pagemap `file` through the chain: loaded level by level as the resolution needs it.
class ChainReader {
public:
  ChainReader(const std::vector<Level> &chain, std::string file, const std::atomic<bool> *cancel)
      : chain_(chain), file_(std::move(file)), cancel_(cancel) {
    maps_.resize(chain.size());
    pages_.resize(chain.size());
  }

  Result<const Pagemap *> pagemap(size_t level) {
    if (!maps_[level]) {
      const std::string what = chain_[level].name + "/" + file_;
      // Kept as the Result (not unwrapped into a copy): GCC 12 at -O2 reports the moved-out
      // string's bytes as maybe uninitialized (-Wmaybe-uninitialized, a false positive).
      auto data = read_all_at(chain_[level].dir.get(), file_, what);
      if (!data)
        return tl::unexpected(data.error());
      maps_[level] = BH_TRY(parse_pagemap(*data, what));
    }
    return &*maps_[level];
  }

  // Appends the `nr` pages at `vaddr` as level `level` has them to `out`.
  Status copy(size_t level, uint64_t vaddr, uint64_t nr, int out, const std::string &out_what) {
    const Pagemap *pm = BH_TRY(pagemap(level));
    auto &entries = pm->entries;
    while (nr > 0) {
      // The entry holding vaddr: the last one starting at or before it.
      auto it = std::upper_bound(entries.begin(), entries.end(), vaddr,
                                 [](uint64_t v, const Entry &e) { return v < e.vaddr; });
      if (it == entries.begin() || vaddr >= std::prev(it)->vaddr + std::prev(it)->nr * kPageSize)
        return fail(fmt::format("{}/{} has no page at {:#x}, which a later image says it holds",
                                chain_[level].name, file_, vaddr),
                    EPROTO);
      const Entry &e = *std::prev(it);
      const uint64_t skip = (vaddr - e.vaddr) / kPageSize;
      const uint64_t take = std::min(nr, e.nr - skip);
      if (e.flags & kPeParent) {
        if (level + 1 >= chain_.size())
          return fail(fmt::format("{}/{} says the pages at {:#x} are in its parent, and it has none",
                                  chain_[level].name, file_, vaddr),
                      EPROTO);
        BH_CHECK(copy(level + 1, vaddr, take, out, out_what));
      } else {
        BH_CHECK(
            copy_present(level, pm->pages_id, e.offset + skip * kPageSize, take * kPageSize, out, out_what));
      }
      vaddr += take * kPageSize;
      nr -= take;
    }
    return {};
  }

private:
  Status copy_present(size_t level, uint32_t pages_id, uint64_t offset, uint64_t bytes, int out,
                      const std::string &out_what) {
    const std::string pages = fmt::format("pages-{}.img", pages_id);
    const std::string what = chain_[level].name + "/" + pages;
    if (!pages_[level]) {
      pages_[level] =
          UniqueFd(::openat(chain_[level].dir.get(), pages.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!pages_[level])
        return failf_errno("opening {}", what);
    }
    // In the kernel where it can (one copy of each page instead of two through this process:
    // the flattening is the copy of a container's memory, seconds under TCG at 256 MiB).
    while (bytes > 0 && copy_range_) {
      BH_CHECK(check_cancel());
      loff_t off = static_cast<loff_t>(offset);
      ssize_t n = ::copy_file_range(pages_[level].get(), &off, out, nullptr,
                                    static_cast<size_t>(std::min(bytes, kCopyChunk)), 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        copy_range_ = false; // another file system: the copy below
        break;
      }
      if (n < 0)
        return failf_errno("copying {} into {}", what, out_what);
      if (n == 0)
        return fail(fmt::format("{} ends at {}, before the pages its pagemap names", what, offset), EPROTO);
      offset += static_cast<uint64_t>(n);
      bytes -= static_cast<uint64_t>(n);
    }
    buf_.resize(size_t{1} << 20);
    while (bytes > 0) {
      BH_CHECK(check_cancel());
      const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes, buf_.size()));
      ssize_t n = ::pread(pages_[level].get(), buf_.data(), want, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return failf_errno("reading {}", what);
      if (n == 0)
        return fail(fmt::format("{} ends at {}, before the pages its pagemap names", what, offset), EPROTO);
      BH_CHECK(write_all(out, std::string_view(buf_.data(), static_cast<size_t>(n)), out_what));
      offset += static_cast<uint64_t>(n);
      bytes -= static_cast<uint64_t>(n);
    }
    return {};
  }

  Status check_cancel() const {
    if (cancel_ && cancel_->load(std::memory_order_relaxed))
      return fail("flattening " + chain_.front().name + ": cancelled", ECANCELED);
    return {};
  }

  const std::vector<Level> &chain_;
  std::string file_;
  const std::atomic<bool> *cancel_;
  std::vector<std::optional<Pagemap>> maps_;
  std::vector<UniqueFd> pages_;
  std::string buf_;
  bool copy_range_ = true;
};

Result<UniqueFd> create_at(int dirfd, const std::string &name, const std::string &what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd)
    return failf_errno("creating {}", what);
  return fd;
}

Result<std::vector<std::string>> list_dir(int dirfd, const std::string &what) {
  int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0)
    return failf_errno("opening {}", what);
  DIR *d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return failf_errno("listing {}", what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (auto *de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..")
      names.push_back(std::move(n));
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err) {
    errno = err;
    return failf_errno("listing {}", what);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Removes `name` of `root_fd`, a directory of files (an image directory, a flat copy being
// built): there is nothing deeper in either.
Status remove_flat_dir(int root_fd, const std::string &name) {
  UniqueFd dir(::openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir && errno == ENOENT)
    return {};
  if (!dir)
    return failf_errno("opening {}", name);
  for (const auto &n : BH_TRY(list_dir(dir.get(), name)))
    if (::unlinkat(dir.get(), n.c_str(), 0) < 0)
      return failf_errno("removing {}/{}", name, n);
  if (::unlinkat(root_fd, name.c_str(), AT_REMOVEDIR) < 0)
    return failf_errno("removing {}", name);
  return {};
}

bool is_pagemap(const std::string &n) {
  return n.rfind("pagemap-", 0) == 0 && n.size() > 12 && n.compare(n.size() - 4, 4, ".img") == 0;
}

// Builds the flat copy of chain[0] in `out` (an empty directory).
Status build_flat(const std::vector<Level> &chain, int out, const std::string &out_name,
                  const std::atomic<bool> *cancel) {
  const Level &top = chain.front();
  auto names = BH_TRY(list_dir(top.dir.get(), top.name));
  std::set<std::string> written;
  for (const auto &n : names) {
    if (!is_pagemap(n))
      continue;
    ChainReader reader(chain, n, cancel);
    const Pagemap *pm = BH_TRY(reader.pagemap(0));
    const std::string pages = fmt::format("pages-{}.img", pm->pages_id);
    if (!written.insert(pages).second)
      return fail(fmt::format("{}: two pagemaps name {}", top.name, pages), EPROTO);
    const std::string pages_what = out_name + "/" + pages;
    UniqueFd pages_fd = BH_TRY(create_at(out, pages, pages_what));
    std::string map;
    put_le32(map, kImgCommonMagic);
    put_le32(map, kPagemapMagic);
    std::string rec;
    put_varint(rec, 1 << 3);
    put_varint(rec, pm->pages_id);
    put_le32(map, static_cast<uint32_t>(rec.size()));
    map += rec;
    for (const Entry &e : pm->entries) {
      BH_CHECK(reader.copy(0, e.vaddr, e.nr, pages_fd.get(), pages_what));
      rec.clear();
      put_varint(rec, 1 << 3);
      put_varint(rec, e.vaddr);
      put_varint(rec, 2 << 3);
      put_varint(rec, std::min<uint64_t>(e.nr, UINT32_MAX));
      put_varint(rec, 4 << 3);
      put_varint(rec, kPePresent | (e.flags & kPeLazy));
      if (e.had_nr_pages || e.nr > UINT32_MAX) {
        put_varint(rec, 5 << 3);
        put_varint(rec, e.nr);
      }
      put_le32(map, static_cast<uint32_t>(rec.size()));
      map += rec;
    }
    if (::fsync(pages_fd.get()) < 0)
      return failf_errno("syncing {}", pages_what);
    UniqueFd map_fd = BH_TRY(create_at(out, n, out_name + "/" + n));
    BH_CHECK(write_all(map_fd.get(), map, out_name + "/" + n));
    if (::fsync(map_fd.get()) < 0)
      return failf_errno("syncing {}/{}", out_name, n);
    written.insert(n);
  }
  // Every other image as it is (CRIU never rewrites one): the parent link is what goes.
  for (const auto &n : names) {
    if (n == "parent" || written.count(n))
      continue;
    struct stat st {};
    if (::fstatat(top.dir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
      return failf_errno("inspecting {}/{}", top.name, n);
    if (!S_ISREG(st.st_mode))
      return fail(fmt::format("{}/{} is not a regular file: not an image this knows", top.name, n), EPROTO);
    if (::linkat(top.dir.get(), n.c_str(), out, n.c_str(), 0) < 0)
      return failf_errno("linking {}/{} into {}", top.name, n, out_name);
  }
  if (::fsync(out) < 0)
    return failf_errno("syncing {}", out_name);
  return {};
}

// Replaces `root`/`name` with a directory `fill` makes: built beside it (.flatten-NAME) and
// exchanged with it atomically (renameat2 RENAME_EXCHANGE), so a reader sees one or the other,
// never half of one; the old one then goes. Whatever fails leaves `name` as it was.
Status replace_dir(int root_fd, const std::string &name,
                   const std::function<Status(int out, const std::string &tmp)> &fill) {
  const std::string tmp = ".flatten-" + name;
  BH_CHECK(remove_flat_dir(root_fd, tmp)); // one cut short before
  if (::mkdirat(root_fd, tmp.c_str(), 0700) < 0)
    return failf_errno("creating {}", tmp);
  struct RemoveTmp {
    int root;
    const std::string &name;
    ~RemoveTmp() { (void)remove_flat_dir(root, name); }
  } remove_tmp{root_fd, tmp};
  UniqueFd out(::openat(root_fd, tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!out)
    return failf_errno("opening {}", tmp);
  BH_CHECK(fill(out.get(), tmp));
  if (::renameat2(root_fd, tmp.c_str(), root_fd, name.c_str(), RENAME_EXCHANGE) < 0)
    return failf_errno("exchanging {} with its flat copy", name);
  if (::fsync(root_fd) < 0)
    return failf_errno("syncing the directory of {}", name);
  return {}; // the old directory, now at tmp, goes with remove_tmp
}

} // namespace

Result<int> image_chain_length(int root_fd, const std::string &name) {
  auto chain = BH_TRY(open_chain(root_fd, name));
  return static_cast<int>(chain.size());
}

Status flatten_image_chain(int root_fd, const std::string &name, const std::atomic<bool> *cancel) {
  auto chain = BH_TRY(open_chain(root_fd, name));
  if (chain.size() == 1)
    return {}; // self-contained already
  return replace_dir(root_fd, name, [&](int out, const std::string &tmp) {
    return context(build_flat(chain, out, tmp, cancel), "flattening the image chain of " + name);
  });
}

Status adopt_flat_copy(int root_fd, const std::string &name, int flat_fd) {
  UniqueFd dir(::openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir)
    return failf_errno("opening image directory {}", name);
  // The same dump: its inventory is one file (the flattening hard-links every image but the
  // pagemaps and pages). A directory of the same name from another chain is not.
  struct stat mine {};
  struct stat theirs {};
  if (::fstatat(dir.get(), "inventory.img", &mine, AT_SYMLINK_NOFOLLOW) < 0)
    return failf_errno("inspecting {}/inventory.img", name);
  if (::fstatat(flat_fd, "inventory.img", &theirs, AT_SYMLINK_NOFOLLOW) < 0)
    return failf_errno("inspecting the flat copy of {}: its inventory.img", name);
  if (mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino)
    return fail(fmt::format("the flat copy of {} was made from another directory of that name", name),
                ESTALE);
  auto names = BH_TRY(list_dir(flat_fd, "the flat copy of " + name));
  if (std::find(names.begin(), names.end(), "parent") != names.end())
    return fail(fmt::format("the flat copy of {} has a parent link: it is not flat", name), EPROTO);
  return replace_dir(root_fd, name, [&](int out, const std::string &tmp) -> Status {
    for (const auto &n : names)
      if (::linkat(flat_fd, n.c_str(), out, n.c_str(), 0) < 0)
        return failf_errno("linking {} of the flat copy of {} into {}", n, name, tmp);
    return {};
  });
}

Status link_image_dirs(int from_fd, int to_fd, const std::string &what) {
  for (const auto &d : BH_TRY(list_dir(from_fd, what))) {
    UniqueFd from(::openat(from_fd, d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!from)
      return failf_errno("opening {}/{}", what, d);
    if (::mkdirat(to_fd, d.c_str(), 0700) < 0)
      return failf_errno("creating the copy of {}/{}", what, d);
    UniqueFd to(::openat(to_fd, d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!to)
      return failf_errno("opening the copy of {}/{}", what, d);
    for (const auto &n : BH_TRY(list_dir(from.get(), what + "/" + d))) {
      struct stat st {};
      if (::fstatat(from.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
        return failf_errno("inspecting {}/{}/{}", what, d, n);
      if (S_ISLNK(st.st_mode)) {
        char target[512];
        ssize_t len = ::readlinkat(from.get(), n.c_str(), target, sizeof target - 1);
        if (len < 0)
          return failf_errno("reading {}/{}/{}", what, d, n);
        target[len] = '\0';
        if (::symlinkat(target, to.get(), n.c_str()) < 0)
          return failf_errno("linking the copy of {}/{}/{}", what, d, n);
      } else if (!S_ISREG(st.st_mode)) {
        return fail(fmt::format("{}/{}/{} is not an image file", what, d, n), EPROTO);
      } else if (::linkat(from.get(), n.c_str(), to.get(), n.c_str(), 0) < 0) {
        return failf_errno("linking {}/{}/{} into its copy", what, d, n);
      }
    }
  }
  return {};
}

Result<int> prune_image_dirs(int root_fd, const std::string &top) {
  auto chain = BH_TRY(open_chain(root_fd, top));
  std::set<std::string> keep;
  for (const auto &level : chain)
    keep.insert(level.name);
  // Listed first, removed after: never a removal under a directory stream.
  int removed = 0;
  for (const auto &n : BH_TRY(list_dir(root_fd, "the image directories of " + top))) {
    struct stat st {};
    if (keep.count(n) || ::fstatat(root_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      continue;
    BH_CHECK(remove_flat_dir(root_fd, n));
    ++removed;
  }
  return removed;
}

} // namespace bulkhead::migration
