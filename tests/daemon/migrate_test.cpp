// bulkheadd's migrate on the host: every bad request (unknown remote, bad mode, unknown container,
// fields bulkheadctl never sends) is a clear error that changes nothing and leaves no file. The
// migrations themselves need two hosts: tests/multihost/vm-migrate.sh.
#include <filesystem>

#include "daemon_fixture.hpp"

namespace bh_test {

namespace fs = std::filesystem;

namespace {

// Files a migration would leave in --root (its temporary export).
std::vector<std::string> migrate_files(const std::string &root) {
  std::vector<std::string> out;
  for (const auto &d : fs::directory_iterator(root))
    if (d.path().filename().string().rfind("migrate-", 0) == 0)
      out.push_back(d.path().string());
  return out;
}

} // namespace

TEST_F(DaemonTest, MigrateBadRequestsAreClearErrorsAndChangeNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());

  auto r = ctl({"migrate", "c1", "nowhere"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "no remote named \"nowhere\"")) << r;
  r = ctl({"migrate", "nope", "nowhere"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "nowhere") || contains(r.err, "nope")) << r;
  r = ctl({"migrate", "c1", "nowhere", "--cold", "--live"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "excludes")) << r;
  r = ctl({"migrate", "c1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "REMOTE")) << r;

  auto h = http("POST", "/1.0/containers/c1/migrate", R"({"remote": "nowhere", "mode": "warm"})");
  EXPECT_EQ(h.status, 400) << h.body;
  EXPECT_TRUE(contains(h.body.dump(), "\\\"mode\\\" must be \\\"cold\\\" or \\\"live\\\"")) << h.body;
  h = http("POST", "/1.0/containers/c1/migrate", R"({"remote": "nowhere"})");
  EXPECT_EQ(h.status, 404) << h.body;
  h = http("POST", "/1.0/containers/c1/migrate", R"({"mode": "cold"})");
  EXPECT_EQ(h.status, 400) << h.body;
  h = http("POST", "/1.0/containers/c1/migrate", R"({"remote": 7})");
  EXPECT_EQ(h.status, 400) << h.body;
  h = http("POST", "/1.0/containers/c1/migrate", R"({"remote": "nowhere", "bogus": 1})");
  EXPECT_EQ(h.status, 400) << h.body;
  EXPECT_TRUE(contains(h.body.dump(), "unknown field")) << h.body;
  h = http("POST", "/1.0/containers/c1/migrate", R"([1])");
  EXPECT_EQ(h.status, 400) << h.body;

  // Nothing changed, nothing was left.
  EXPECT_EQ(info("c1")["state"], "stopped");
  EXPECT_TRUE(migrate_files(root_).empty());
  EXPECT_TRUE(ctl({"start", "c1"}).ok());
}

} // namespace bh_test
