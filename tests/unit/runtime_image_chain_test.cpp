#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "runtime/images_lent.hpp"

using bulkhead::runtime::image_chain;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/bh-image-chain-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string real(const std::string &p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? buf : "";
}

} // namespace

// The migration's layout: the final images link to the last pre-copy round, which links to the
// one before (relative links, as CRIU makes them).
TEST(ImageChain, FollowsParentLinksNewestFirst) {
  TempDir t;
  for (const char *d : {"/final", "/pre", "/pre/pre-1", "/pre/pre-2"})
    ASSERT_EQ(::mkdir((t.path + d).c_str(), 0700), 0);
  ASSERT_EQ(::symlink("../pre-1", (t.path + "/pre/pre-2/parent").c_str()), 0);
  ASSERT_EQ(::symlink("../pre/pre-2", (t.path + "/final/parent").c_str()), 0);
  auto chain = image_chain(t.path + "/final");
  ASSERT_TRUE(chain) << chain.error().text();
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[0], t.path + "/final");
  EXPECT_EQ((*chain)[1], real(t.path + "/pre/pre-2"));
  EXPECT_EQ((*chain)[2], real(t.path + "/pre/pre-1"));
}

TEST(ImageChain, NoParentIsAChainOfOne) {
  TempDir t;
  auto chain = image_chain(t.path);
  ASSERT_TRUE(chain);
  EXPECT_EQ(*chain, std::vector<std::string>{t.path});
}

TEST(ImageChain, ADanglingParentIsNamed) {
  TempDir t;
  ASSERT_EQ(::symlink("../gone", (t.path + "/parent").c_str()), 0);
  auto chain = image_chain(t.path);
  ASSERT_FALSE(chain);
  EXPECT_NE(chain.error().text().find(t.path + "/../gone"), std::string::npos) << chain.error().text();
}

// A link loop ends (CRIU would fail on it; the walk must not spin).
TEST(ImageChain, ALoopEnds) {
  TempDir t;
  ASSERT_EQ(::symlink(".", (t.path + "/parent").c_str()), 0);
  auto chain = image_chain(t.path);
  ASSERT_TRUE(chain);
  EXPECT_LE(chain->size(), 65u);
}
