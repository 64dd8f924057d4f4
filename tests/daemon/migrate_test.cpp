// bulkheadd's migrate on the host: every bad request (unknown remote, bad mode, unknown container,
// fields bulkheadctl never sends) is a clear error that changes nothing and leaves no file. The
// migrations themselves need two hosts: tests/multihost/vm-migrate.sh.
#include <filesystem>
#include <fstream>

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

void write_text(const std::string &path, const std::string &text) { std::ofstream(path) << text; }

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
  for (const char *bad : {"-1", "17", "1.5", "\"2\""}) {
    h = http("POST", "/1.0/containers/c1/migrate",
             std::string(R"({"remote": "nowhere", "mode": "live", "precopy_rounds": )") + bad + "}");
    EXPECT_EQ(h.status, 400) << bad << " -> " << h.body;
    EXPECT_TRUE(contains(h.body.dump(), "\\\"precopy_rounds\\\" must be a whole number from 0 to 16"))
        << h.body;
  }
  r = ctl({"migrate", "c1", "nowhere", "--cold", "--precopy-rounds", "2"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "excludes")) << r;
  r = ctl({"migrate", "c1", "nowhere", "--precopy-rounds", "99"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "99")) << r;

  // Nothing changed, nothing was left.
  EXPECT_EQ(info("c1")["state"], "stopped");
  EXPECT_TRUE(migrate_files(root_).empty());
  EXPECT_TRUE(ctl({"start", "c1"}).ok());
}

// A daemon killed in the middle of a migration leaves its files, and on the target an arrival
// marker naming a container it had imported but not yet answered for (the source, with no answer,
// brings its own copy back). The next start removes that container and every migrate-* file, and
// keeps the others.
TEST_F(DaemonTest, StartRemovesWhatAnInterruptedMigrationLeft) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c-in", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"create", "kept", "--template", "busybox"}).ok());
  kill_daemon();
  write_text(root_ + "/migrate-in-0123.incoming", "c-in");
  write_text(root_ + "/migrate-in-0123.bhx", "a cut transfer");
  fs::create_directories(root_ + "/migrate-in-0123.memory/pre-1");
  write_text(root_ + "/migrate-in-0123.memory/pre-1/pages-1.img", "pages");
  fs::create_directories(root_ + "/migrate-4567.pre/pre-1");
  // A marker naming no container here (or a bad name) only goes.
  write_text(root_ + "/migrate-in-89ab.incoming", "../../etc");

  start_daemon();
  auto r = ctl({"info", "c-in"});
  EXPECT_FALSE(r.ok()) << r;
  EXPECT_EQ(info("kept")["state"], "stopped");
  EXPECT_TRUE(migrate_files(root_).empty());
  EXPECT_FALSE(fs::exists(root_ + "/containers/c-in"));
}

} // namespace bh_test

namespace bh_test {

// `host evacuate` on one host: bad requests (unknown remote, --parallel out of 1..8, unknown
// fields, wrong types) are clear errors that start no operation and change nothing; the host stays
// "normal" and keeps creating containers. Real evacuations: DaemonRemoteTest.Evacuate* (two daemons
// here) and tests/multihost/vm-evacuate.sh (running containers, in the VM).
TEST_F(DaemonTest, EvacuateBadRequestsAreClearErrorsAndChangeNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());

  auto r = ctl({"host", "evacuate", "nowhere"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "no remote named \"nowhere\"")) << r;
  r = ctl({"host", "evacuate", "nowhere", "--dry-run"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "no remote named \"nowhere\"")) << r;
  for (const char *n : {"0", "99", "-1", "two"}) {
    r = ctl({"host", "evacuate", "nowhere", "--parallel", n});
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_TRUE(contains(r.err, "--parallel")) << r;
  }
  r = ctl({"host", "evacuate", "nowhere", "--cold", "--live"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "excludes")) << r;
  r = ctl({"host", "evacuate"}); // without REMOTE only in a cluster
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "this host is in no cluster")) << r;
  r = ctl({"host", "evacuate", "nowhere", "--bogus"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "--bogus")) << r;

  struct Case {
    const char *body;
    int status;
    const char *says;
  };
  const Case cases[] = {
      {R"({"remote": "nowhere"})", 404, "no remote named \"nowhere\""},
      {R"({"remote": "nowhere", "dry_run": true})", 404, "no remote named"},
      {R"({"remote": "nowhere", "parallel": 0})", 400,
       "\"parallel\" must be a whole number from 1 to 8 (got 0)"},
      {R"({"remote": "nowhere", "parallel": 99})", 400, "(got 99)"},
      {R"({"remote": "nowhere", "parallel": 1.5})", 400, "\"parallel\" must be"},
      {R"({"remote": "nowhere", "parallel": "2"})", 400, "\"parallel\" must be"},
      {R"({"remote": "nowhere", "mode": "warm"})", 400, "\"mode\" must be \"cold\" or \"live\""},
      {R"({"remote": "nowhere", "dry_run": "yes"})", 400, "\"dry_run\" must be true or false"},
      {R"({"remote": "nowhere", "bogus": 1})", 400, "unknown field \"bogus\""},
      {R"({"remote": 7})", 400, "remote"},
      {R"({})", 400, "remote"},
      {R"([1])", 400, "JSON object"},
      {R"({"remote": )", 400, "malformed JSON"},
  };
  for (const auto &c : cases) {
    auto h = http("POST", "/1.0/host/evacuate", c.body);
    EXPECT_EQ(h.status, c.status) << c.body << " -> " << h.body;
    EXPECT_TRUE(contains(h.body.dump(), json(c.says).dump().substr(1, json(c.says).dump().size() - 2)))
        << c.body << " -> " << h.body;
  }

  // Nothing changed, nothing started, nothing was left; the host is not evacuating.
  auto host = http("GET", "/1.0/host");
  EXPECT_EQ(host.status, 200);
  EXPECT_EQ(host.body["state"], "normal") << host.body;
  EXPECT_TRUE(host.body["evacuation"].is_null()) << host.body;
  EXPECT_EQ(host.body["containers"], 1) << host.body;
  r = ctl({"host", "info"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "state: normal")) << r;
  for (const auto &op : http("GET", "/1.0/operations").body)
    EXPECT_NE(op.value("resource", ""), "/1.0/host") << op;
  EXPECT_EQ(info("c1")["state"], "stopped");
  EXPECT_TRUE(migrate_files(root_).empty());
  r = ctl({"list"});
  EXPECT_FALSE(contains(r.out, "evacuated")) << r;
  EXPECT_TRUE(ctl({"create", "c2", "--template", "busybox"}).ok());
}

} // namespace bh_test
