#include <gtest/gtest.h>

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "security/capabilities.hpp"
#include "security/plan.hpp"
#include "security/process_attrs.hpp"

namespace bulkhead::security {
namespace {

TEST(SecurityCaps, ParsesSpecNames) {
  EXPECT_EQ(capability_from_name("CAP_CHOWN").value(), 0);
  EXPECT_EQ(capability_from_name("CAP_NET_ADMIN").value(), 12);
  EXPECT_EQ(capability_from_name("CAP_SYS_ADMIN").value(), 21);
  EXPECT_EQ(capability_from_name("CAP_CHECKPOINT_RESTORE").value(), 40);
  EXPECT_EQ(capability_name(12), "CAP_NET_ADMIN");
}

TEST(SecurityCaps, RejectsUnknownAndMisspelled) {
  for (const char *bad :
       {"CAP_NOT_A_CAP", "cap_chown", "NET_ADMIN", "CAP_", "", "12", "CAP_12", "CAP_CHOWN "}) {
    auto r = capability_from_name(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("unknown capability"), std::string::npos) << r.error().message;
    }
  }
}

TEST(SecurityCaps, ResolvesAllSets) {
  oci::Capabilities c;
  c.bounding = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  c.effective = {"CAP_KILL"};
  c.permitted = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  c.inheritable = {"CAP_NET_BIND_SERVICE"};
  c.ambient = {"CAP_NET_BIND_SERVICE"};
  std::vector<std::string> warnings;
  auto r = resolve_capabilities(c, [&](const std::string &w) { warnings.push_back(w); });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->bounding, (1ull << CAP_CHOWN) | (1ull << CAP_KILL) | (1ull << CAP_NET_BIND_SERVICE));
  EXPECT_EQ(r->effective, 1ull << CAP_KILL);
  EXPECT_EQ(r->inheritable, 1ull << CAP_NET_BIND_SERVICE);
  EXPECT_EQ(r->ambient, 1ull << CAP_NET_BIND_SERVICE);
  EXPECT_TRUE(warnings.empty());
}

TEST(SecurityCaps, UnknownNameNamesTheSet) {
  oci::Capabilities c;
  c.permitted = {"CAP_KILL", "CAP_FLY"};
  auto r = resolve_capabilities(c, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "process.capabilities.permitted: unknown capability \"CAP_FLY\"");
}

TEST(SecurityCaps, AmbientNeedsPermittedAndInheritable) {
  oci::Capabilities c;
  c.permitted = {"CAP_KILL"};
  c.ambient = {"CAP_KILL"};
  std::vector<std::string> warnings;
  auto r = resolve_capabilities(c, [&](const std::string &w) { warnings.push_back(w); });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ambient, 0u);
  EXPECT_EQ(r->inheritable, 0u); // never filled in on our own (CVE-2022-29162)
  EXPECT_TRUE(warnings.empty()); // `runc spec` configs look like this: skipped quietly
}

std::string status_line(const std::string &status, const std::string &key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0)
      return line.substr(key.size() + 2);
  return "";
}

// Applies a plan in a forked child (so the test process keeps its privileges) and returns the
// child's /proc/self/status, or "error: ..." when applying failed.
std::string apply_in_child(const SecurityPlan &plan, const oci::User &user) {
  int p[2];
  if (::pipe(p) < 0)
    return "pipe";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    auto r = apply_capabilities_and_user(plan, user);
    std::string out;
    if (!r) {
      out = "error: " + r.error().text();
    } else {
      std::ifstream f("/proc/self/status");
      std::stringstream ss;
      ss << f.rdbuf();
      out = ss.str();
    }
    (void)!::write(p[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

TEST(SecurityCaps, AppliesSetsAndUser) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root";
  oci::Capabilities c;
  c.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"};
  c.effective = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  c.permitted = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  c.inheritable = {"CAP_NET_BIND_SERVICE"};
  c.ambient = {"CAP_NET_BIND_SERVICE"};
  SecurityPlan plan;
  plan.capabilities = resolve_capabilities(c, {}).value();
  oci::User u;
  u.uid = 1234;
  u.gid = 1234;
  u.additional_gids = {5, 6};
  auto status = apply_in_child(plan, u);
  ASSERT_EQ(status.find("error"), std::string::npos) << status;
  EXPECT_EQ(status_line(status, "CapBnd"), "0000000000000421");
  EXPECT_EQ(status_line(status, "CapEff"), "0000000000000420");
  EXPECT_EQ(status_line(status, "CapPrm"), "0000000000000420");
  EXPECT_EQ(status_line(status, "CapInh"), "0000000000000400");
  EXPECT_EQ(status_line(status, "CapAmb"), "0000000000000400");
  EXPECT_EQ(status_line(status, "Uid"), "1234\t1234\t1234\t1234");
  EXPECT_EQ(status_line(status, "Groups"), "5 6 ");
}

TEST(SecurityCaps, EmptySetsDropEverything) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root";
  SecurityPlan plan;
  plan.capabilities = CapabilityPlan{};
  auto status = apply_in_child(plan, oci::User{});
  ASSERT_EQ(status.find("error"), std::string::npos) << status;
  for (const char *k : {"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"})
    EXPECT_EQ(status_line(status, k), "0000000000000000") << k;
}

TEST(SecurityProcessAttrs, ResolvesAndRejects) {
  oci::Personality per{"LINUX32", {"ADDR_NO_RANDOMIZE"}};
  EXPECT_EQ(resolve_personality(per).value(), 0x0008ul | 0x0040000ul);
  EXPECT_FALSE(resolve_personality(oci::Personality{"WINDOWS", {}}));
  EXPECT_FALSE(resolve_personality(oci::Personality{"LINUX", {"NOPE"}}));

  EXPECT_EQ(resolve_io_priority(oci::IoPriority{"IOPRIO_CLASS_BE", 4}).value(), (2 << 13) | 4);
  EXPECT_FALSE(resolve_io_priority(oci::IoPriority{"IOPRIO_CLASS_BE", 8}));
  EXPECT_FALSE(resolve_io_priority(oci::IoPriority{"IOPRIO_CLASS_XX", 1}));

  oci::Scheduler s;
  s.policy = "SCHED_FIFO";
  s.priority = 10;
  s.flags = {"SCHED_FLAG_RESET_ON_FORK"};
  auto sp = resolve_scheduler(s);
  ASSERT_TRUE(sp) << sp.error().message;
  EXPECT_EQ(sp->policy, 1u);
  EXPECT_EQ(sp->flags, 1u);
  s.priority = 0;
  EXPECT_FALSE(resolve_scheduler(s));
  s.policy = "SCHED_BOGUS";
  EXPECT_FALSE(resolve_scheduler(s));
  oci::Scheduler nice;
  nice.policy = "SCHED_OTHER";
  nice.nice = 30;
  EXPECT_FALSE(resolve_scheduler(nice));
}

} // namespace
} // namespace bulkhead::security
