// migration/criu_image_flatten.cpp on image directories written here in CRIU's pagemap format.
// CRIU itself restores a flattened chain in the VM: the failover scenario's standby flattens its
// chain before the host dies (tests/multihost/vm-failover.sh), and so does the failover bench.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bulkhead/unique_fd.hpp"
#include "migration/criu_image_flatten.hpp"

using bulkhead::UniqueFd;
using bulkhead::migration::adopt_flat_copy;
using bulkhead::migration::flatten_image_chain;
using bulkhead::migration::image_chain_length;
using bulkhead::migration::link_image_dirs;
using bulkhead::migration::prune_image_dirs;

namespace {

constexpr uint32_t kParent = 1, kPresent = 4;
constexpr uint64_t kPage = 4096;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/bh-flatten-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

void le32(std::string &o, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    o.push_back(static_cast<char>(v >> (8 * i)));
}
void varint(std::string &o, uint64_t v) {
  while (v >= 0x80) {
    o.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  o.push_back(static_cast<char>(v));
}

struct E {
  uint64_t vaddr, nr;
  uint32_t flags;
};

// A pagemap image as CRIU 3.17 writes one: magics, pagemap_head, entries.
std::string pagemap(uint32_t pages_id, const std::vector<E> &entries, bool extra_field = false) {
  std::string o;
  le32(o, 0x54564319);
  le32(o, 0x56084025);
  std::string r;
  varint(r, 1 << 3);
  varint(r, pages_id);
  le32(o, static_cast<uint32_t>(r.size()));
  o += r;
  for (const auto &e : entries) {
    r.clear();
    varint(r, 1 << 3);
    varint(r, e.vaddr);
    varint(r, 2 << 3);
    varint(r, e.nr);
    varint(r, 4 << 3);
    varint(r, e.flags);
    if (extra_field) {
      varint(r, 9 << 3);
      varint(r, 1);
    }
    le32(o, static_cast<uint32_t>(r.size()));
    o += r;
  }
  return o;
}

// Pages whose every byte says which page of which image it is.
std::string pages(std::initializer_list<char> marks) {
  std::string o;
  for (char m : marks)
    o.append(kPage, m);
  return o;
}

void put(const std::string &path, const std::string &data) { std::ofstream(path, std::ios::binary) << data; }
std::string get(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Three dumps of one process: img-1 full, img-2 and img-3 incremental; pages at 0x10000 (4) and
// 0x20000 (2), and shared memory at 0 (1 page) that only the base holds.
struct ImageChainFlatten : ::testing::Test {
  TempDir t;
  UniqueFd root;
  void SetUp() override {
    for (const char *d : {"img-1", "img-2", "img-3"})
      ASSERT_EQ(::mkdir((t.path + "/" + d).c_str(), 0700), 0);
    put(t.path + "/img-1/pagemap-5.img", pagemap(1, {{0x10000, 4, kPresent}, {0x20000, 2, kPresent}}));
    put(t.path + "/img-1/pages-1.img", pages({'a', 'b', 'c', 'd', 'e', 'f'}));
    put(t.path + "/img-1/pagemap-shmem-7.img", pagemap(2, {{0, 1, kPresent}}));
    put(t.path + "/img-1/pages-2.img", pages({'s'}));
    put(t.path + "/img-1/core-5.img", "core of the first dump");
    // The second dump rewrote 0x11000, and splits the first range three ways.
    put(t.path + "/img-2/pagemap-5.img",
        pagemap(
            11,
            {{0x10000, 1, kParent}, {0x11000, 1, kPresent}, {0x12000, 2, kParent}, {0x20000, 2, kParent}}));
    put(t.path + "/img-2/pages-11.img", pages({'B'}));
    put(t.path + "/img-2/pagemap-shmem-7.img", pagemap(12, {{0, 1, kParent}}));
    put(t.path + "/img-2/pages-12.img", "");
    put(t.path + "/img-2/core-5.img", "core of the second dump");
    ASSERT_EQ(::symlink("../img-1", (t.path + "/img-2/parent").c_str()), 0);
    // The third rewrote 0x20000; its first range spans the second's three entries.
    put(t.path + "/img-3/pagemap-5.img",
        pagemap(21, {{0x10000, 4, kParent}, {0x20000, 1, kPresent}, {0x21000, 1, kParent}}));
    put(t.path + "/img-3/pages-21.img", pages({'E'}));
    put(t.path + "/img-3/pagemap-shmem-7.img", pagemap(22, {{0, 1, kParent}}));
    put(t.path + "/img-3/pages-22.img", "");
    put(t.path + "/img-3/core-5.img", "core of the third dump");
    put(t.path + "/img-3/inventory.img", "inventory");
    ASSERT_EQ(::symlink("../img-2", (t.path + "/img-3/parent").c_str()), 0);
    root = UniqueFd(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root);
  }
  std::string leftovers() {
    std::string out;
    for (const auto &f : std::filesystem::directory_iterator(t.path))
      if (f.path().filename().string().rfind(".flatten", 0) == 0)
        out += f.path().filename().string() + " ";
    return out;
  }
};

TEST_F(ImageChainFlatten, TheNewestDirectoryHoldsEveryPageItResolvesToAndNoParent) {
  ASSERT_EQ(image_chain_length(root.get(), "img-3").value(), 3);
  struct stat core_before {};
  ASSERT_EQ(::stat((t.path + "/img-3/core-5.img").c_str(), &core_before), 0);

  auto r = flatten_image_chain(root.get(), "img-3");
  ASSERT_TRUE(r) << r.error().text();

  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 1);
  struct stat st {};
  EXPECT_NE(::lstat((t.path + "/img-3/parent").c_str(), &st), 0);
  // The same entries, each present, and the pages each level had last.
  EXPECT_EQ(get(t.path + "/img-3/pagemap-5.img"),
            pagemap(21, {{0x10000, 4, kPresent}, {0x20000, 1, kPresent}, {0x21000, 1, kPresent}}));
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'a', 'B', 'c', 'd', 'E', 'f'}));
  EXPECT_EQ(get(t.path + "/img-3/pagemap-shmem-7.img"), pagemap(22, {{0, 1, kPresent}}));
  EXPECT_EQ(get(t.path + "/img-3/pages-22.img"), pages({'s'}));
  // Every other image is the newest dump's own file.
  struct stat core_after {};
  ASSERT_EQ(::stat((t.path + "/img-3/core-5.img").c_str(), &core_after), 0);
  EXPECT_EQ(core_after.st_ino, core_before.st_ino);
  EXPECT_EQ(get(t.path + "/img-3/inventory.img"), "inventory");
  // The older directories are the caller's to remove; nothing half-made is left.
  EXPECT_EQ(get(t.path + "/img-1/pages-1.img"), pages({'a', 'b', 'c', 'd', 'e', 'f'}));
  EXPECT_EQ(leftovers(), "");
  // A flat directory flattens to itself.
  ASSERT_TRUE(flatten_image_chain(root.get(), "img-3"));
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'a', 'B', 'c', 'd', 'E', 'f'}));
}

TEST_F(ImageChainFlatten, AMiddleDirectoryFlattensAndTheNewerOneStillResolvesThroughIt) {
  ASSERT_TRUE(flatten_image_chain(root.get(), "img-2"));
  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 2);
  std::filesystem::remove_all(t.path + "/img-1");
  ASSERT_TRUE(flatten_image_chain(root.get(), "img-3"));
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'a', 'B', 'c', 'd', 'E', 'f'}));
}

TEST_F(ImageChainFlatten, AParentLinkOutOfTheRootIsRefusedAndChangesNothing) {
  ASSERT_EQ(::unlink((t.path + "/img-2/parent").c_str()), 0);
  ASSERT_EQ(::symlink("../../etc", (t.path + "/img-2/parent").c_str()), 0);
  auto r = flatten_image_chain(root.get(), "img-3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find("../../etc"), std::string::npos) << r.error().message;
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'E'}));
  EXPECT_EQ(leftovers(), "");
}

TEST_F(ImageChainFlatten, APageMissingFromTheParentIsAnErrorAndChangesNothing) {
  put(t.path + "/img-3/pagemap-5.img",
      pagemap(21,
              {{0x10000, 4, kParent}, {0x20000, 1, kPresent}, {0x21000, 1, kParent}, {0x30000, 1, kParent}}));
  auto r = flatten_image_chain(root.get(), "img-3");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("0x30000"), std::string::npos) << r.error().message;
  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 3);
  EXPECT_EQ(leftovers(), "");
}

TEST_F(ImageChainFlatten, AnImageOfAnUnknownShapeIsRefused) {
  put(t.path + "/img-2/pagemap-5.img", pagemap(11, {{0x10000, 4, kParent}, {0x20000, 2, kParent}}, true));
  auto r = flatten_image_chain(root.get(), "img-3");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unknown pagemap_entry field 9"), std::string::npos) << r.error().message;
  put(t.path + "/img-2/pagemap-5.img", "not an image at all");
  r = flatten_image_chain(root.get(), "img-3");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("magic"), std::string::npos) << r.error().message;
  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 3);
  EXPECT_EQ(leftovers(), "");
}

TEST_F(ImageChainFlatten, ALoopOfParentLinksIsRefused) {
  ASSERT_EQ(::symlink("../img-3", (t.path + "/img-1/parent").c_str()), 0);
  auto r = image_chain_length(root.get(), "img-3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ELOOP);
  EXPECT_FALSE(flatten_image_chain(root.get(), "img-3"));
}

// The standby's background flattening: a copy of hard links flattened elsewhere, adopted into a
// chain that grew meanwhile (img-4 on top), and the directories below it pruned.
struct FlatCopyElsewhere : ImageChainFlatten {
  TempDir work;
  UniqueFd work_fd;
  void SetUp() override {
    ImageChainFlatten::SetUp();
    work_fd = UniqueFd(::open(work.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(work_fd);
    auto linked = link_image_dirs(root.get(), work_fd.get(), t.path);
    ASSERT_TRUE(linked) << linked.error().text();
    struct stat a {
    }, b{};
    ASSERT_EQ(::stat((t.path + "/img-3/core-5.img").c_str(), &a), 0);
    ASSERT_EQ(::stat((work.path + "/img-3/core-5.img").c_str(), &b), 0);
    ASSERT_EQ(a.st_ino, b.st_ino);
    ASSERT_EQ(image_chain_length(work_fd.get(), "img-3").value(), 3);
    // The dump after the copy was made: nothing rewritten.
    ASSERT_EQ(::mkdir((t.path + "/img-4").c_str(), 0700), 0);
    put(t.path + "/img-4/pagemap-5.img", pagemap(31, {{0x10000, 4, kParent}, {0x20000, 2, kParent}}));
    put(t.path + "/img-4/pages-31.img", "");
    put(t.path + "/img-4/inventory.img", "inventory 4");
    ASSERT_EQ(::symlink("../img-3", (t.path + "/img-4/parent").c_str()), 0);
  }
  UniqueFd flat_dir() {
    auto r = flatten_image_chain(work_fd.get(), "img-3");
    EXPECT_TRUE(r) << r.error().text();
    return UniqueFd(::openat(work_fd.get(), "img-3", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
};

TEST_F(FlatCopyElsewhere, IsAdoptedAndTheDirectoriesBelowItPruned) {
  UniqueFd flat = flat_dir();
  ASSERT_TRUE(flat);
  // The original chain was untouched by the flattening of the copy.
  EXPECT_EQ(image_chain_length(root.get(), "img-4").value(), 4);
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'E'}));

  auto r = adopt_flat_copy(root.get(), "img-3", flat.get());
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_EQ(image_chain_length(root.get(), "img-4").value(), 2);
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'a', 'B', 'c', 'd', 'E', 'f'}));
  EXPECT_EQ(get(t.path + "/img-3/pages-22.img"), pages({'s'}));
  auto pruned = prune_image_dirs(root.get(), "img-4");
  ASSERT_TRUE(pruned) << pruned.error().text();
  EXPECT_EQ(*pruned, 2);
  EXPECT_FALSE(std::filesystem::exists(t.path + "/img-1"));
  EXPECT_FALSE(std::filesystem::exists(t.path + "/img-2"));
  EXPECT_EQ(get(t.path + "/img-4/inventory.img"), "inventory 4");
  EXPECT_EQ(leftovers(), "");
  // Nothing more to prune; the adopted directory flattens to itself.
  EXPECT_EQ(prune_image_dirs(root.get(), "img-4").value(), 0);
  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 1);
}

TEST_F(FlatCopyElsewhere, OfAnotherDirectoryOfThatNameIsRefusedAndChangesNothing) {
  UniqueFd flat = flat_dir();
  ASSERT_TRUE(flat);
  ASSERT_EQ(::unlink((work.path + "/img-3/inventory.img").c_str()), 0);
  put(work.path + "/img-3/inventory.img", "inventory");
  auto r = adopt_flat_copy(root.get(), "img-3", flat.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ESTALE);
  EXPECT_EQ(image_chain_length(root.get(), "img-4").value(), 4);
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'E'}));
  EXPECT_EQ(leftovers(), "");
}

TEST_F(FlatCopyElsewhere, WithAParentLinkIsRefused) {
  UniqueFd unflattened(::openat(work_fd.get(), "img-3", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto r = adopt_flat_copy(root.get(), "img-3", unflattened.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_EQ(image_chain_length(root.get(), "img-4").value(), 4);
  EXPECT_EQ(leftovers(), "");
}

TEST_F(ImageChainFlatten, ACancelledFlatteningChangesNothing) {
  std::atomic<bool> cancel{true};
  auto r = flatten_image_chain(root.get(), "img-3", &cancel);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ECANCELED);
  EXPECT_EQ(image_chain_length(root.get(), "img-3").value(), 3);
  EXPECT_EQ(get(t.path + "/img-3/pages-21.img"), pages({'E'}));
  EXPECT_EQ(leftovers(), "");
}

} // namespace
