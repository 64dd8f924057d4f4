// process.* and hostname: what the container process sees of its own configuration.
#include "harness.hpp"

#include <unistd.h>

#include <map>

using namespace bh_test;

namespace {

class ProcessTest : public BulkheadTest {
protected:
  // "Key:\tvalue" lines of /proc/self/status as seen by the container process.
  std::map<std::string, std::string> container_status(const Mutator &mutate) {
    auto r = run_container({"cat", "/proc/self/status"}, mutate);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::map<std::string, std::string> fields;
    for (auto &line : split_lines(r.out)) {
      auto colon = line.find(':');
      if (colon != std::string::npos)
        fields[line.substr(0, colon)] = trim(line.substr(colon + 1));
    }
    return fields;
  }
};

TEST_F(ProcessTest, HostnameComesFromConfig) {
  char host_before[256] = {};
  ::gethostname(host_before, sizeof host_before - 1);
  auto r = run_container({"hostname"}, [](json &c) { c["hostname"] = "bh-test-host"; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "bh-test-host") << r;
  char host_after[256] = {};
  ::gethostname(host_after, sizeof host_after - 1);
  EXPECT_STREQ(host_before, host_after) << "the host's hostname changed";
}

TEST_F(ProcessTest, DomainnameComesFromConfig) {
  auto r = run_container({"cat", "/proc/sys/kernel/domainname"},
                         [](json &c) { c["domainname"] = "bh-test-domain"; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "bh-test-domain") << r;
}

TEST_F(ProcessTest, CwdIsHonoured) {
  auto r = run_container({"pwd"}, [](json &c) { c["process"]["cwd"] = "/tmp"; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "/tmp") << r;
}

TEST_F(ProcessTest, EnvIsHonoured) {
  auto r = run_container({"sh", "-c", "echo \"$FOO|$WITH_SPACE|$PATH\""}, [](json &c) {
    c["process"]["env"] = {"PATH=/bin:/sbin", "FOO=bar", "WITH_SPACE=a b  c"};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "bar|a b  c|/bin:/sbin") << r;
}

TEST_F(ProcessTest, EnvIsExactlyTheConfiguredOne) {
  auto r = run_container({"env"}, [](json &c) { c["process"]["env"] = {"PATH=/bin", "ONLY=1"}; });
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  std::sort(lines.begin(), lines.end());
  // The runtime may add HOME (runc does when it is missing); nothing from the host may leak.
  lines.erase(std::remove_if(lines.begin(), lines.end(), [](auto &l) { return l.rfind("HOME=", 0) == 0; }),
              lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"ONLY=1", "PATH=/bin"})) << r;
}

TEST_F(ProcessTest, ArgsArePassedVerbatim) {
  auto r = run_container(
      {"sh", "-c", "for a in \"$@\"; do echo \"[$a]\"; done", "argv0", "a b", "", "'q'", "$HOME"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "[a b]\n[]\n['q']\n[$HOME]\n") << r;
}

TEST_F(ProcessTest, UserUidGidAndAdditionalGids) {
  auto mutate = [](json &c) {
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {10, 20}}};
  };
  auto r = run_container({"id"}, mutate);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "uid=1000")) << r;
  EXPECT_TRUE(contains(r.out, "gid=1001")) << r;
  EXPECT_TRUE(contains(r.out, "10") && contains(r.out, "20")) << r;

  auto st = container_status(mutate);
  EXPECT_EQ(split_words(st["Uid"]), (std::vector<std::string>{"1000", "1000", "1000", "1000"}));
  EXPECT_EQ(split_words(st["Gid"]), (std::vector<std::string>{"1001", "1001", "1001", "1001"}));
  auto groups = split_words(st["Groups"]);
  std::sort(groups.begin(), groups.end());
  EXPECT_EQ(groups, (std::vector<std::string>{"10", "20"})) << "Groups: " << st["Groups"];
}

TEST_F(ProcessTest, RootUserHasNoSupplementaryGroupsFromHost) {
  auto st = container_status({});
  EXPECT_EQ(split_words(st["Uid"]), (std::vector<std::string>{"0", "0", "0", "0"}));
  EXPECT_EQ(split_words(st["Gid"]), (std::vector<std::string>{"0", "0", "0", "0"}));
  EXPECT_EQ(trim(st["Groups"]), "") << "Groups: " << st["Groups"];
}

TEST_F(ProcessTest, UmaskIsHonoured) {
  auto r = run_container({"sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"},
                         [](json &c) { c["process"]["user"]["umask"] = 077; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"0077", "600"})) << r;
}

TEST_F(ProcessTest, DefaultUmaskIs022) {
  auto r = run_container({"sh", "-c", "umask"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "0022") << r;
}

TEST_F(ProcessTest, RlimitsAreApplied) {
  auto r = run_container({"sh", "-c", "ulimit -n; ulimit -Hn"}, [](json &c) {
    c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 512}, {"soft", 256}}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"256", "512"})) << r;
}

TEST_F(ProcessTest, NoNewPrivilegesAndCapabilities) {
  auto st = container_status({});
  EXPECT_EQ(st["NoNewPrivs"], "1");
  // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
  EXPECT_EQ(st["CapEff"], "0000000020000420");
  EXPECT_EQ(st["CapPrm"], "0000000020000420");
  EXPECT_EQ(st["CapBnd"], "0000000020000420");
  // The ambient set is listed too, but raising an ambient capability needs it in the inheritable
  // set, which the runc default spec leaves empty: CapAmb is not checked here.
}

TEST_F(ProcessTest, CapabilitiesFollowConfig) {
  auto st = container_status([](json &c) {
    json caps = {"CAP_CHOWN", "CAP_SYS_ADMIN"}; // bits 0 and 21
    c["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    c["process"]["noNewPrivileges"] = false;
  });
  EXPECT_EQ(st["CapEff"], "0000000000200001");
  EXPECT_EQ(st["CapBnd"], "0000000000200001");
  EXPECT_EQ(st["CapAmb"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "0");
}

} // namespace
