#include <gtest/gtest.h>

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "oci/default_spec.hpp"
#include "oci/parse.hpp"
#include "security/default_profile.hpp"
#include "security/lsm.hpp"
#include "security/plan.hpp"
#include "security/seccomp.hpp"

namespace bulkhead::security {
namespace {

oci::SeccompSyscall rule(std::vector<std::string> names, std::string action,
                         std::vector<oci::SeccompArg> args = {},
                         std::optional<uint32_t> errno_ret = std::nullopt) {
  oci::SeccompSyscall s;
  s.names = std::move(names);
  s.action = std::move(action);
  s.args = std::move(args);
  s.errno_ret = errno_ret;
  return s;
}

oci::Seccomp allow_all(std::vector<oci::SeccompSyscall> rules = {}) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = std::move(rules);
  return s;
}

Result<SeccompPlan> compile(const oci::Seccomp &s, std::vector<std::string> *warnings = nullptr) {
  return compile_seccomp(s, [&](const std::string &w) {
    if (warnings)
      warnings->push_back(w);
  });
}

TEST(SecuritySeccomp, EveryActionCompiles) {
  for (const char *a : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"}) {
    auto r = compile(allow_all({rule({"getpid"}, a)}));
    ASSERT_TRUE(r) << a << ": " << r.error().message;
    EXPECT_FALSE(r->bpf.empty()) << a;
    EXPECT_FALSE(r->notify);
    auto d = oci::Seccomp{};
    d.default_action = a;
    d.syscalls = {rule({"getpid"}, "SCMP_ACT_ALLOW")};
    EXPECT_TRUE(compile(d)) << "default " << a;
  }
  oci::Seccomp n = allow_all({rule({"getppid"}, "SCMP_ACT_NOTIFY")});
  n.listener_path = "/run/agent.sock";
  n.listener_metadata = "meta";
  auto r = compile(n);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->notify);
  EXPECT_TRUE(r->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER);
  EXPECT_EQ(r->listener_metadata, "meta");
}

TEST(SecuritySeccomp, EveryOperatorCompiles) {
  for (const char *op : {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                         "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}) {
    auto r = compile(allow_all({rule({"personality"}, "SCMP_ACT_ERRNO", {{0, 8, 8, op}}, 22)}));
    EXPECT_TRUE(r) << op << ": " << (r ? "" : r.error().message);
  }
}

TEST(SecuritySeccomp, EveryArchitectureCompiles) {
  for (const char *a :
       {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"}) {
    ASSERT_TRUE(seccomp_arch(a)) << a;
    auto s = allow_all({rule({"getpid"}, "SCMP_ACT_ERRNO")});
    s.architectures = {a};
    auto r = compile(s);
    // One filter covers one byte order: big-endian architectures are refused on this host.
    if (!r) {
      EXPECT_NE(r.error().message.find("different byte order"), std::string::npos)
          << a << ": " << r.error().message;
      continue;
    }
    EXPECT_FALSE(r->bpf.empty()) << a;
  }
#if defined(__x86_64__)
  auto multi = allow_all({rule({"getpid"}, "SCMP_ACT_ERRNO")});
  multi.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"};
  EXPECT_TRUE(compile(multi));
#endif
}

TEST(SecuritySeccomp, FlagsMapToKernelBits) {
  auto s = allow_all({rule({"getpid"}, "SCMP_ACT_ERRNO")});
  s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
             "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  auto r = compile(s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->flags, 1u | 2u | 4u | 32u);
}

struct BadCase {
  const char *name;
  oci::Seccomp seccomp;
  const char *message;
};

TEST(SecuritySeccomp, BadInputIsAClearError) {
  std::vector<BadCase> cases;
  cases.push_back({"unknown action", allow_all({rule({"getpid"}, "SCMP_ACT_EXPLODE")}),
                   "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_EXPLODE\""});
  auto def = allow_all();
  def.default_action = "SCMP_ACT_MAYBE";
  cases.push_back({"unknown default", def, "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_MAYBE\""});
  auto arch = allow_all();
  arch.architectures = {"SCMP_ARCH_Z80"};
  cases.push_back(
      {"unknown arch", arch, "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""});
  auto flag = allow_all();
  flag.flags = {"SECCOMP_FILTER_FLAG_FAST"};
  cases.push_back(
      {"unknown flag", flag, "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FAST\""});
  cases.push_back({"index", allow_all({rule({"read"}, "SCMP_ACT_ERRNO", {{6, 1, 0, "SCMP_CMP_EQ"}})}),
                   "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0-5)"});
  cases.push_back({"operator", allow_all({rule({"read"}, "SCMP_ACT_ERRNO", {{0, 1, 0, "SCMP_CMP_ABOUT"}})}),
                   "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\""});
  cases.push_back({"notify without listener", allow_all({rule({"read"}, "SCMP_ACT_NOTIFY")}),
                   "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"});
  auto dn = allow_all();
  dn.default_action = "SCMP_ACT_NOTIFY";
  cases.push_back(
      {"notify default", dn, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"});
  cases.push_back({"errnoRet on allow", allow_all({rule({"read"}, "SCMP_ACT_KILL", {}, 5)}),
                   "linux.seccomp.syscalls[0].action: errnoRet is only valid with SCMP_ACT_ERRNO or "
                   "SCMP_ACT_TRACE, not SCMP_ACT_KILL"});
  cases.push_back({"no names", allow_all({rule({}, "SCMP_ACT_ERRNO")}),
                   "linux.seccomp.syscalls[0].names: must list at least one syscall"});
  for (const auto &c : cases) {
    auto r = compile(c.seccomp);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().message, c.message) << c.name;
  }
}

TEST(SecuritySeccomp, UnknownSyscallsAreSkippedWithAWarning) {
  std::vector<std::string> warnings;
  auto r = compile(allow_all({rule({"getpid", "not_a_syscall", "also_not"}, "SCMP_ACT_ERRNO")}), &warnings);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("not_a_syscall, also_not"), std::string::npos) << warnings[0];
}

// Loads the plan in a forked child (no_new_privs set) and returns what `probe` returns there.
int run_confined(const SeccompPlan &p, int (*probe)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    SecurityPlan plan;
    plan.seccomp = p;
    plan.no_new_privileges = true;
    if (!set_no_new_privileges(plan) || !load_seccomp(plan, -1, ""))
      ::_exit(200);
    ::_exit(probe());
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFSIGNALED(st))
    return 1000 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

int probe_personality() {
  // PER_LINUX (0) is allowed; 8 (PER_LINUX32) is refused with errno 22 by the rule below.
  errno = 0;
  long q = ::syscall(SYS_personality, 0UL);
  if (q < 0)
    return 1;
  long r = ::syscall(SYS_personality, 8UL);
  if (r != -1 || errno != 22)
    return 2;
  long masked = ::syscall(SYS_personality, 0x0040000UL | 0UL); // ADDR_NO_RANDOMIZE: mask check
  if (masked != -1 || errno != 33)
    return 3;
  ::syscall(SYS_personality, 0UL);
  return 0;
}

TEST(SecuritySeccomp, FiltersBehaveInTheKernel) {
  auto s = allow_all({
      rule({"personality"}, "SCMP_ACT_ERRNO", {{0, 8, 0, "SCMP_CMP_EQ"}}, 22),
      rule({"personality"}, "SCMP_ACT_ERRNO", {{0, 0x0040000, 0x0040000, "SCMP_CMP_MASKED_EQ"}}, 33),
  });
  auto r = compile(s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(run_confined(*r, probe_personality), 0);

  auto kill = compile(allow_all({rule({"getppid"}, "SCMP_ACT_KILL_PROCESS")}));
  ASSERT_TRUE(kill);
  EXPECT_EQ(run_confined(*kill, [] { return static_cast<int>(::getppid() * 0); }), 1000 + SIGSYS);

  // Several conditions on one argument are alternatives.
  auto alt = compile(allow_all(
      {rule({"getpriority"}, "SCMP_ACT_ERRNO", {{0, 7, 0, "SCMP_CMP_EQ"}, {0, 9, 0, "SCMP_CMP_EQ"}}, 40)}));
  ASSERT_TRUE(alt);
  EXPECT_EQ(run_confined(*alt,
                         [] {
                           errno = 0;
                           ::syscall(SYS_getpriority, 7, 0);
                           int a = errno;
                           errno = 0;
                           ::syscall(SYS_getpriority, 9, 0);
                           int b = errno;
                           return a == 40 && b == 40 ? 0 : 1;
                         }),
            0);
}

TEST(SecuritySeccomp, NotifySendsTheFdAndState) {
  oci::Seccomp s = allow_all({rule({"getppid"}, "SCMP_ACT_NOTIFY")});
  s.listener_metadata = "hello";
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  s.listener_path = "/unused";
  auto r = compile(s);
  ASSERT_TRUE(r) << r.error().message;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    SecurityPlan plan;
    plan.seccomp = *r;
    plan.no_new_privileges = true;
    if (!set_no_new_privileges(plan))
      ::_exit(2);
    auto l = load_seccomp(plan, sv[1], R"({"ociVersion":"1.2.0","id":"c1","status":"created","pid":42})");
    ::_exit(l ? 0 : 1);
  }
  ::close(sv[1]);
  char buf[4096];
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov {
    buf, sizeof buf
  };
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sv[0], &mh, 0);
  ASSERT_GT(n, 0);
  auto msg = nlohmann::json::parse(std::string(buf, static_cast<size_t>(n)));
  EXPECT_EQ(msg["fds"], nlohmann::json::array({"seccompFd"}));
  EXPECT_EQ(msg["metadata"], "hello");
  EXPECT_EQ(msg["pid"], 42);
  EXPECT_EQ(msg["state"]["id"], "c1");
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(cm->cmsg_type, SCM_RIGHTS);
  int fd;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  EXPECT_GE(fd, 0);
  ::close(fd);
  ::close(sv[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(SecurityDefaultProfile, CompilesAndGatesOnCapabilities) {
  for (bool all : {false, true}) {
    std::vector<std::string> caps = default_capabilities();
    if (all)
      caps.insert(caps.end(), {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_TIME"});
    auto profile = default_seccomp_profile(caps);
    auto parsed = oci::parse_spec(nlohmann::json{{"ociVersion", "1.2.0"},
                                                 {"root", {{"path", "rootfs"}}},
                                                 {"linux", {{"seccomp", nlohmann::json(profile)}}}}
                                      .dump());
    ASSERT_TRUE(parsed) << parsed.error().message;
    auto r = compile(*parsed->linux->seccomp);
    ASSERT_TRUE(r) << r.error().message;
    std::string dump = profile.dump();
    EXPECT_EQ(dump.find("\"mount\"") != std::string::npos, all);
    EXPECT_EQ(dump.find("\"init_module\"") != std::string::npos, all);
    EXPECT_EQ(dump.find("\"clone3\"") != std::string::npos, true); // ENOSYS without SYS_ADMIN
  }
  EXPECT_EQ(default_capabilities().size(), 14u);
}

TEST(SecurityDefaultProfile, SpecCarriesCapsAndSeccomp) {
  auto spec = oci::parse_spec(oci::default_spec_json(false));
  ASSERT_TRUE(spec) << spec.error().message;
  ASSERT_TRUE(spec->process->capabilities);
  EXPECT_EQ(spec->process->capabilities->bounding, default_capabilities());
  EXPECT_TRUE(spec->process->capabilities->inheritable.empty());
  EXPECT_TRUE(spec->process->capabilities->ambient.empty());
  ASSERT_TRUE(spec->linux->seccomp);
  EXPECT_EQ(spec->linux->seccomp->default_action, "SCMP_ACT_ERRNO");
  auto plan = prepare_security(*spec, {});
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->seccomp);
  EXPECT_TRUE(plan->no_new_privileges);
}

TEST(SecurityLsm, LabelWithoutLsmIsAnError) {
  oci::Spec spec;
  spec.process.emplace();
  spec.process->apparmor_profile = "bulkhead-default";
  auto r = prepare_security(spec, {});
  if (apparmor_enabled()) {
    EXPECT_TRUE(r);
  } else {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message,
              "process.apparmorProfile \"bulkhead-default\": AppArmor is not enabled on this host");
  }
  oci::Spec se;
  se.process.emplace();
  se.process->selinux_label = "system_u:system_r:container_t:s0";
  auto s = prepare_security(se, {});
  if (!selinux_enabled()) {
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("SELinux is not enabled"), std::string::npos);
  }
}

TEST(SecurityProcfs, PrivateProcfsIsVerified) {
  auto fd = open_private_procfs();
  ASSERT_TRUE(fd) << fd.error().text();
  // A write to something that is not procfs is refused: a tmpfs-like path cannot be reached.
  auto bad = write_procfs(fd->get(), "../etc/passwd", "x");
  EXPECT_FALSE(bad);
}

} // namespace
} // namespace bulkhead::security
