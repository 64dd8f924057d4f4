// Copies and incremental walks of overlay upper layers (storage/upper_tree.hpp) on real files:
// whiteouts, trusted.overlay.* attributes, hardlinks, symlinks and times survive a copy, a symlink
// is never followed, and a walk against a base sees exactly what changed.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

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

} // namespace
} // namespace bulkhead::storage::test
