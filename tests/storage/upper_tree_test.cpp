// Copies and incremental walks of overlay upper layers (storage/upper_tree.hpp) on real files:
// whiteouts, trusted.overlay.* attributes, hardlinks, symlinks and times survive a copy, a symlink
// is never followed, and a walk against a base sees exactly what changed.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <ctime>
#include <set>

#include "helpers.hpp"
#include "storage/upper_tree.hpp"

namespace bulkhead::storage::test {
namespace {

UniqueFd open_dir(const std::string &p) {
  return UniqueFd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

// An upper layer as overlayfs leaves one (needs root: whiteouts are device nodes, trusted.* xattrs).
void make_upper(const std::string &d, const std::string &outside) {
  ASSERT_EQ(sh("mkdir -p " + d + "/etc " + d + "/opq/sub " + outside), 0);
  spit(d + "/etc/a", "alpha\n");
  ::chmod((d + "/etc/a").c_str(), 0640);
  ASSERT_EQ(::link((d + "/etc/a").c_str(), (d + "/etc/b").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (d + "/out").c_str()), 0);
  spit(outside + "/secret", "no\n");
  ASSERT_EQ(::mknod((d + "/etc/gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  ASSERT_EQ(::setxattr((d + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(::mkfifo((d + "/fifo").c_str(), 0600), 0);
  struct timespec ts[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (d + "/etc/a").c_str(), ts, AT_SYMLINK_NOFOLLOW), 0);
}

TEST(UpperTree, CopyKeepsWhiteoutsXattrsLinksAndTimes) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root (device nodes, trusted.* attributes)";
  TempDir t;
  std::string src = t.path() + "/src", dst = t.path() + "/dst";
  make_upper(src, t.path() + "/outside");
  ASSERT_EQ(::mkdir(dst.c_str(), 0755), 0);
  auto s = open_dir(src), d = open_dir(dst);
  auto r = copy_upper(s.get(), d.get(), nullptr);
  ASSERT_TRUE(r) << r.error().text();

  struct stat st {};
  ASSERT_EQ(::lstat((dst + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[4] = {};
  EXPECT_EQ(::lgetxattr((dst + "/opq").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  struct stat a {
  }, b{};
  ASSERT_EQ(::lstat((dst + "/etc/a").c_str(), &a), 0);
  ASSERT_EQ(::lstat((dst + "/etc/b").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  EXPECT_EQ(a.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(a.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(slurp(dst + "/etc/a"), "alpha\n");
  ASSERT_EQ(::lstat((dst + "/out").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)); // the link itself, not what it points to
  EXPECT_FALSE(exists(dst + "/out/secret") && !S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat((dst + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // A walk never goes through the symlink.
  std::set<std::string> seen;
  ASSERT_TRUE(walk_upper(s.get(), {}, [&](const Entry &e, int, uint64_t) -> Status {
    seen.insert(e.path);
    return {};
  }));
  EXPECT_FALSE(seen.count("out/secret"));
  EXPECT_TRUE(seen.count("out"));
}

TEST(UpperTree, WalkAgainstBaseSeesOnlyChangesAndDeletions) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root (device nodes, trusted.* attributes)";
  TempDir t;
  std::string cur = t.path() + "/cur", base = t.path() + "/base";
  make_upper(cur, t.path() + "/outside");
  ASSERT_EQ(sh("mkdir -p " + cur + "/data/old && echo 1 > " + cur + "/data/old/x && echo keep > " + cur +
               "/data/keep && echo c > " + cur + "/data/c"),
            0);
  ASSERT_EQ(::mkdir(base.c_str(), 0755), 0);
  auto c = open_dir(cur), b = open_dir(base);
  ASSERT_TRUE(copy_upper(c.get(), b.get(), nullptr));

  // Unchanged: nothing is visited.
  std::set<std::string> seen;
  auto visit = [&](const Entry &e, int, uint64_t) -> Status {
    if (e.kind != EntryKind::Directory)
      seen.insert(e.path);
    return {};
  };
  ASSERT_TRUE(walk_upper(c.get(), {nullptr, b.get()}, visit));
  EXPECT_TRUE(seen.empty());

  spit(cur + "/data/c", "changed, longer\n");
  ASSERT_EQ(
      sh("rm -r " + cur + "/data/old && echo n > " + cur + "/data/new && chmod 600 " + cur + "/data/keep"),
      0);
  ASSERT_TRUE(walk_upper(c.get(), {nullptr, b.get()}, visit));
  EXPECT_EQ(seen, (std::set<std::string>{"data/c", "data/new", "data/keep"}));
  auto gone = deleted_paths(c.get(), b.get(), nullptr);
  ASSERT_TRUE(gone);
  EXPECT_EQ(*gone, std::vector<std::string>{"data/old"});

  // remove_paths refuses to go through a symlink and the root itself.
  EXPECT_FALSE(remove_paths(c.get(), {"out/secret"}));
  EXPECT_TRUE(exists(t.path() + "/outside/secret"));
  EXPECT_FALSE(remove_paths(c.get(), {"."}));
  EXPECT_FALSE(remove_paths(c.get(), {"../base"}));
}

// A copy of a layer that runs on (a live migration's disk pre-sync): what was written just before
// or during the copy is marked (mtime 0), so the next walk against the copy sends it again even
// when a later write left the same size and the same coarse-clock mtime; older files keep theirs
// and are skipped.
TEST(UpperTree, UnsettledCopyMarksRecentWritesForTheNextWalk) {
  TempDir t;
  std::string cur = t.path() + "/cur", base = t.path() + "/base";
  ASSERT_EQ(sh("mkdir -p " + cur + "/d " + base), 0);
  spit(cur + "/d/old", "old\n");
  struct timespec past[2] = {{1600000000, 5}, {1600000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (cur + "/d/old").c_str(), past, AT_SYMLINK_NOFOLLOW), 0);
  spit(cur + "/d/recent", "v1\n");
  struct stat before {};
  ASSERT_EQ(::lstat((cur + "/d/recent").c_str(), &before), 0);
  timespec since{};
  ::clock_gettime(CLOCK_REALTIME, &since);
  since.tv_sec -= 1;
  auto c = open_dir(cur), b = open_dir(base);
  auto r = copy_upper(c.get(), b.get(), nullptr, nullptr, &since);
  ASSERT_TRUE(r) << r.error().text();
  struct stat st {};
  ASSERT_EQ(::lstat((base + "/d/old").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  ASSERT_EQ(::lstat((base + "/d/recent").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 0);
  EXPECT_EQ(slurp(base + "/d/recent"), "v1\n");

  // A write the clock did not see: same size, the same mtime as when it was copied.
  spit(cur + "/d/recent", "v2\n");
  struct timespec same[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (cur + "/d/recent").c_str(), same, AT_SYMLINK_NOFOLLOW), 0);
  std::set<std::string> seen;
  ASSERT_TRUE(walk_upper(c.get(), {nullptr, b.get()}, [&](const Entry &e, int, uint64_t) -> Status {
    if (e.kind != EntryKind::Directory)
      seen.insert(e.path);
    return {};
  }));
  EXPECT_EQ(seen, std::set<std::string>{"d/recent"});

  // Without the mark (a frozen copy) the same hidden write would be skipped: what the mark is for.
  std::string frozen = t.path() + "/frozen";
  ASSERT_EQ(::mkdir(frozen.c_str(), 0755), 0);
  auto f = open_dir(frozen);
  ASSERT_TRUE(copy_upper(c.get(), f.get(), nullptr));
  spit(cur + "/d/recent", "v3\n");
  ASSERT_EQ(::utimensat(AT_FDCWD, (cur + "/d/recent").c_str(), same, AT_SYMLINK_NOFOLLOW), 0);
  seen.clear();
  ASSERT_TRUE(walk_upper(c.get(), {nullptr, f.get()}, [&](const Entry &e, int, uint64_t) -> Status {
    if (e.kind != EntryKind::Directory)
      seen.insert(e.path);
    return {};
  }));
  EXPECT_TRUE(seen.empty());
}

} // namespace
} // namespace bulkhead::storage::test
