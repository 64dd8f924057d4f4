// CRIU 3.17's nftables lock table left in a restored namespace (migration/criu_lock_table.hpp):
// the names come from the images' nft text, and the deletion over NETLINK_NETFILTER is checked
// with libnftables (network/nftables.hpp), a separate implementation, in a namespace of its own.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "helpers.hpp"
#include "migration/criu_lock_table.hpp"
#include "network/nftables.hpp"

using namespace bulkhead;
using namespace bulkhead::net;
using namespace bulkhead::net::test;

namespace {

using CriuLockTable = RootOnly;

struct ImagesDir {
  std::filesystem::path path;
  ImagesDir() {
    char tmpl[] = "/tmp/bh-locktable.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~ImagesDir() { std::filesystem::remove_all(path); }
  void write(const std::string &name, const std::string &text) const { std::ofstream(path / name) << text; }
};

} // namespace

TEST(CriuLockTableNames, OnlyInetTablesNamedCriuAndDigitsFromNftablesImages) {
  ImagesDir d;
  d.write("nftables-10.img",
          "table inet CRIU-4242 {\n\tchain output {\n\t\ttype filter hook output priority filter; "
          "policy drop;\n\t}\n}\ntable inet filter {\n}\ntable ip CRIU-5 {\n}\n");
  d.write("nftables-11.img", "table inet CRIU-77 {\n}\ntable inet CRIU-x {\n}\ntable inet CRIU-4242 {\n}\n");
  d.write("netns-10.img", "table inet CRIU-99 {\n}\n"); // not an nft image
  std::filesystem::create_symlink("/etc/hostname", d.path / "nftables-12.img");
  UniqueFd dir(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir);
  auto names = migration::criu_lock_tables(dir.get());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"CRIU-4242", "CRIU-77"}));

  ImagesDir empty;
  UniqueFd none(::open(empty.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(migration::criu_lock_tables(none.get()).empty());
}

TEST_F(CriuLockTable, DeletesTheLockTablesAndLeavesTheRest) {
  Space s = Space::make();
  auto made = run_in(s.ns, [] {
    return nft_run("add table inet CRIU-4242\n"
                   "add chain inet CRIU-4242 output { type filter hook output priority 0; policy drop; }\n"
                   "add table inet CRIU-17\n"
                   "add table inet keep\n");
  });
  ASSERT_TRUE(made) << made.error().text();
  // CRIU-1 is not there: fine, and the others still go.
  auto gone = migration::delete_inet_tables(s.ns.fd(), {"CRIU-4242", "CRIU-1", "CRIU-17"});
  ASSERT_TRUE(gone) << gone.error().text();
  for (const char *name : {"CRIU-4242", "CRIU-17"}) {
    auto listed = run_in(s.ns, [&] { return nft_list_table("inet", name); });
    ASSERT_FALSE(listed) << name << " is still there";
    EXPECT_EQ(listed.error().code, ENOENT) << listed.error().text();
  }
  auto kept = run_in(s.ns, [] { return nft_list_table("inet", "keep"); });
  EXPECT_TRUE(kept) << kept.error().text();
  // The host's namespace was never touched: the test's own netns handle is the only one used.
  EXPECT_TRUE(migration::delete_inet_tables(s.ns.fd(), {}));
}

TEST_F(CriuLockTable, ABadNamespaceIsAClearError) {
  auto r = migration::delete_inet_tables(-1, {"CRIU-1"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find("entering the network namespace (fd -1)"), std::string::npos)
      << r.error().text();
  UniqueFd file(::open("/etc/hostname", O_RDONLY | O_CLOEXEC));
  auto notns = migration::delete_inet_tables(file.get(), {"CRIU-1"});
  ASSERT_FALSE(notns);
  EXPECT_EQ(notns.error().code, EINVAL) << notns.error().text();
}
