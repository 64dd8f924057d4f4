// The tree archive that carries bulkheadd's tmpfs mounts past CRIU: real files on a real tmpfs,
// written and rebuilt; hostile archives refused without writing outside the target.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bulkhead/io.hpp"
#include "rootfs/tree_archive.hpp"

namespace fs = std::filesystem;
using namespace bulkhead;
using namespace bulkhead::rootfs;

namespace {

class TreeArchive : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root (tmpfs mounts, chown, mknod)";
    char tmpl[] = "/tmp/bulkhead-treearchive-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    src_ = base_ / "src";
    dst_ = base_ / "dst";
    fs::create_directories(src_);
    fs::create_directories(dst_);
    // Both on their own tmpfs: the writer stays on one filesystem, the sizes count blocks.
    ASSERT_EQ(::mount("tmpfs", src_.c_str(), "tmpfs", 0, "size=64m"), 0);
    ASSERT_EQ(::mount("tmpfs", dst_.c_str(), "tmpfs", 0, "size=64m"), 0);
    archive_ = base_ / "tree";
  }
  void TearDown() override {
    if (base_.empty())
      return;
    for (const auto &p : {src_ / "sub" / "mounted", src_, dst_})
      ::umount2(p.c_str(), MNT_DETACH);
    fs::remove_all(base_);
  }

  Result<TreeArchiveStats> write() {
    UniqueFd dir(::open(src_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd out(::open(archive_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    return write_tree_archive(dir.get(), out.get());
  }
  Result<TreeArchiveStats> read() {
    UniqueFd in(::open(archive_.c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd dir(::open(dst_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return read_tree_archive(in.get(), dir.get());
  }
  static struct stat lstat_of(const fs::path &p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st;
  }
  static void set_time(const fs::path &p, time_t sec, long nsec) {
    struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
  }
  std::string bytes() {
    std::ifstream f(archive_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void put_bytes(const std::string &b) { ASSERT_TRUE(write_file_atomic(archive_.string(), b, 0600)); }
  size_t entries_in_dst() {
    size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(dst_); it != fs::recursive_directory_iterator(); ++it)
      ++n;
    return n;
  }

  fs::path base_, src_, dst_, archive_;
};

TEST_F(TreeArchive, KeepsTypesOwnersModesTimesLinksAndHoles) {
  fs::create_directories(src_ / "a" / "b" / "c");
  fs::create_directories(src_ / "empty");
  { std::ofstream(src_ / "a" / "b" / "c" / "file") << "hello tree"; }
  ASSERT_EQ(::chown((src_ / "a" / "b").c_str(), 1234, 5678), 0);
  ASSERT_EQ(::chmod((src_ / "a" / "b").c_str(), 0750), 0);
  // Set-id bits survive (chmod after chown on the reader's side).
  { std::ofstream(src_ / "suid") << "#!/bin/sh\n"; }
  ASSERT_EQ(::chown((src_ / "suid").c_str(), 1000, 1000), 0);
  ASSERT_EQ(::chmod((src_ / "suid").c_str(), 04755), 0);
  // A sparse file: 8 MiB with 4 KiB of data at 1 MiB and at the end.
  {
    UniqueFd f(::open((src_ / "sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    std::string page(4096, 'x');
    ASSERT_TRUE(pwrite_all(f.get(), page.data(), page.size(), 1 << 20, "sparse"));
    ASSERT_TRUE(pwrite_all(f.get(), page.data(), page.size(), (8 << 20) - 4096, "sparse"));
  }
  fs::create_symlink("/etc/passwd", src_ / "abs-link");
  fs::create_symlink("../../suid", src_ / "a" / "b" / "rel-link");
  fs::create_hard_link(src_ / "a" / "b" / "c" / "file", src_ / "empty-sibling-link");
  ASSERT_EQ(::mknod((src_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((src_ / "fifo").c_str(), S_IFIFO | 0620, 0), 0);
  ASSERT_EQ(::chmod((src_ / "null").c_str(), 0666), 0); // past the umask
  ASSERT_EQ(::chmod((src_ / "fifo").c_str(), 0620), 0);
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", (src_ / "sock").c_str());
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ::close(s);
  set_time(src_ / "a" / "b" / "c" / "file", 1000000000, 123456789);
  set_time(src_ / "a" / "b", 1100000000, 5);
  ASSERT_EQ(::chmod(src_.c_str(), 01777), 0);

  auto w = write();
  ASSERT_TRUE(w) << w.error().text();
  auto r = read();
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_EQ(w->entries, r->entries);
  EXPECT_EQ(w->data_bytes, r->data_bytes);
  EXPECT_EQ(w->data_bytes, 10u + 10u + 8192u) << "holes are not data";

  std::ifstream f(dst_ / "a" / "b" / "c" / "file");
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(text, "hello tree");
  auto b = lstat_of(dst_ / "a" / "b");
  EXPECT_EQ(b.st_uid, 1234u);
  EXPECT_EQ(b.st_gid, 5678u);
  EXPECT_EQ(b.st_mode & 07777, 0750u);
  EXPECT_EQ(b.st_mtim.tv_sec, 1100000000) << "a directory's time is set after its entries are made";
  auto file = lstat_of(dst_ / "a" / "b" / "c" / "file");
  EXPECT_EQ(file.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(file.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(file.st_nlink, 2u);
  EXPECT_EQ(file.st_ino, lstat_of(dst_ / "empty-sibling-link").st_ino);
  auto suid = lstat_of(dst_ / "suid");
  EXPECT_EQ(suid.st_mode & 07777, 04755u);
  EXPECT_EQ(suid.st_uid, 1000u);
  auto sparse = lstat_of(dst_ / "sparse");
  EXPECT_EQ(sparse.st_size, 8 << 20);
  EXPECT_LE(sparse.st_blocks * 512, 64 * 1024) << "the holes stay holes";
  EXPECT_EQ(fs::read_symlink(dst_ / "abs-link"), "/etc/passwd");
  EXPECT_EQ(fs::read_symlink(dst_ / "a" / "b" / "rel-link"), "../../suid");
  auto null = lstat_of(dst_ / "null");
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  EXPECT_EQ(null.st_mode & 07777, 0666u);
  auto fifo = lstat_of(dst_ / "fifo");
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_mode & 07777, 0620u);
  EXPECT_TRUE(fs::is_directory(dst_ / "empty"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dst_ / "sock"))) << "sockets are not kept";
  EXPECT_EQ(lstat_of(dst_).st_mode & 07777, 01777u) << "the root's mode goes to the target";
}

TEST_F(TreeArchive, LeavesOutWhatIsMountedOnTop) {
  fs::create_directories(src_ / "sub" / "mounted");
  ASSERT_EQ(::mount("tmpfs", (src_ / "sub" / "mounted").c_str(), "tmpfs", 0, "size=1m"), 0);
  { std::ofstream(src_ / "sub" / "mounted" / "other-fs") << "another filesystem"; }
  auto w = write();
  ASSERT_TRUE(w) << w.error().text();
  auto r = read();
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_TRUE(fs::is_directory(dst_ / "sub"));
  EXPECT_FALSE(fs::exists(dst_ / "sub" / "mounted")) << "the mount point is another filesystem's root";
}

TEST_F(TreeArchive, EveryCutIsAnErrorAndNothingLeavesTheTarget) {
  fs::create_directories(src_ / "d");
  { std::ofstream(src_ / "d" / "f") << "data"; }
  fs::create_symlink("/", src_ / "d" / "root-link");
  ASSERT_TRUE(write());
  std::string whole = bytes();
  for (size_t len = 0; len < whole.size(); ++len) {
    put_bytes(whole.substr(0, len));
    fs::remove_all(dst_ / "d");
    auto r = read();
    ASSERT_FALSE(r) << "a cut at " << len << " of " << whole.size() << " bytes was taken";
  }
  EXPECT_TRUE(fs::exists(fs::path("/etc/passwd")));
}

TEST_F(TreeArchive, RefusesHostileNamesParentsAndExtents) {
  { std::ofstream(src_ / "abc") << "0123456789"; }
  ASSERT_TRUE(write());
  std::string good = bytes();
  // The second entry (after the 8-byte magic and the root's 40-byte header) is the file "abc":
  // header at 48, its name at 88.
  constexpr size_t entry = 48, name = 88;
  auto try_with = [&](const std::string &b) {
    put_bytes(b);
    fs::remove_all(dst_ / "abc");
    return read();
  };
  ASSERT_TRUE(try_with(good)) << "the unchanged archive reads";

  std::string dots = good;
  dots.replace(name, 3, "../");
  EXPECT_FALSE(try_with(dots)) << "a name with a slash";
  dots = good;
  dots.replace(name, 3, "a/b");
  EXPECT_FALSE(try_with(dots));
  // A name of ".." (length 2) cannot be made by a shorter name in place: set the length to 2 and
  // the name to "..", dropping one byte.
  std::string up = good;
  up[entry + 2] = 2;
  up[entry + 3] = 0;
  up.replace(name, 3, "..");
  EXPECT_FALSE(try_with(up)) << "the name ..";
  std::string parent = good;
  parent[entry + 4] = 1; // its own index: not an earlier directory
  EXPECT_FALSE(try_with(parent));
  std::string type = good;
  type[entry] = 0x40;
  EXPECT_FALSE(try_with(type)) << "an unknown type";
  std::string mode = good;
  mode[entry + 9] = static_cast<char>(0x10); // 0x1000: a type bit in the mode
  EXPECT_FALSE(try_with(mode));
  // The file's size (8 bytes after the name) made smaller than its one extent.
  std::string extent = good;
  extent[name + 3] = 4;
  auto r = try_with(extent);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find("extent"), std::string::npos) << r.error().text();
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_FALSE(try_with(magic));
}

} // namespace
