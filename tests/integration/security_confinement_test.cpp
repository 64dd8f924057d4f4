// Process security as the container sees it: capabilities, no_new_privs, seccomp (including
// SCMP_ACT_NOTIFY), personality, and clean failures on bad security input.
#include "harness.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

using namespace bh_test;

namespace {

class SecurityTest : public BulkheadTest {
protected:
  static std::string status_field(const std::string &out, const std::string &key) {
    for (const auto &l : split_lines(out))
      if (l.rfind(key + ":", 0) == 0)
        return trim(l.substr(key.size() + 1));
    return "";
  }
  // linux.seccomp exactly as `bulkhead spec` writes it.
  json default_seccomp() {
    std::string dir = make_temp_dir("spec");
    auto r = bh({"spec", "--bundle", dir});
    EXPECT_EQ(r.exit_code, 0) << r;
    return json::parse(read_file(dir + "/config.json"))["linux"]["seccomp"];
  }
};

TEST_F(SecurityTest, CapabilitySetsAreExactlyTheSpec) {
  auto r = run_container({"grep", "^Cap", "/proc/self/status"}, [](json &c) {
    c["process"]["capabilities"] = {{"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}},
                                    {"effective", {"CAP_KILL"}},
                                    {"permitted", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
                                    {"inheritable", {"CAP_NET_BIND_SERVICE"}},
                                    {"ambient", {"CAP_NET_BIND_SERVICE"}}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  // After execve of a file without file capabilities: P' = ambient, E' = ambient.
  EXPECT_EQ(status_field(r.out, "CapBnd"), "0000000000000421") << r;
  EXPECT_EQ(status_field(r.out, "CapInh"), "0000000000000400") << r;
  EXPECT_EQ(status_field(r.out, "CapPrm"), "0000000000000420") << r;
  EXPECT_EQ(status_field(r.out, "CapAmb"), "0000000000000400") << r;
}

TEST_F(SecurityTest, NonRootUserKeepsOnlyAmbient) {
  auto r = run_container({"grep", "-E", "^(Cap|Uid)", "/proc/self/status"}, [](json &c) {
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
    c["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
                                    {"effective", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
                                    {"permitted", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
                                    {"inheritable", {"CAP_NET_BIND_SERVICE"}},
                                    {"ambient", {"CAP_NET_BIND_SERVICE"}}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(status_field(r.out, "Uid"), "1000\t1000\t1000\t1000") << r;
  EXPECT_EQ(status_field(r.out, "CapEff"), "0000000000000400") << r;
  EXPECT_EQ(status_field(r.out, "CapPrm"), "0000000000000400") << r;
}

TEST_F(SecurityTest, NoNewPrivileges) {
  for (bool nnp : {true, false}) {
    auto r = run_container({"grep", "^NoNewPrivs", "/proc/self/status"},
                           [nnp](json &c) { c["process"]["noNewPrivileges"] = nnp; });
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(status_field(r.out, "NoNewPrivs"), nnp ? "1" : "0") << r;
  }
}

TEST_F(SecurityTest, DefaultSeccompProfileBlocksNamespacesAndMounts) {
  json seccomp = default_seccomp();
  auto r = run_container({"sh", "-c",
                          "grep ^Seccomp: /proc/self/status; unshare -n true; echo unshare=$?; "
                          "mount -t tmpfs t /mnt; echo mount=$?; echo fine"},
                         [&](json &c) { c["linux"]["seccomp"] = seccomp; });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(status_field(r.out, "Seccomp"), "2") << r;
  EXPECT_TRUE(contains(r.out, "unshare=1")) << r;
  EXPECT_TRUE(contains(r.out, "mount=255") || contains(r.out, "mount=1")) << r;
  EXPECT_TRUE(contains(r.out, "fine")) << r;
}

TEST_F(SecurityTest, SeccompWithoutNoNewPrivsStillDropsSysAdmin) {
  // Loading a filter without no_new_privs needs CAP_SYS_ADMIN, which the process must not keep.
  auto r =
      run_container({"grep", "-E", "^(CapEff|CapPrm|Seccomp|NoNewPrivs):", "/proc/self/status"}, [](json &c) {
        c["process"]["noNewPrivileges"] = false;
        c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
      });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(status_field(r.out, "Seccomp"), "2") << r;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "0") << r;
  // KILL, NET_BIND_SERVICE, AUDIT_WRITE; no SYS_ADMIN (bit 21)
  EXPECT_EQ(status_field(r.out, "CapEff"), "0000000020000420") << r;
}

TEST_F(SecurityTest, SeccompErrnoRetAndArguments) {
  std::string bundle =
      make_bundle({"sh", "-c", "mkdir /a; echo mkdir=$?; rmdir /tmp; echo rmdir=$?"}, [](json &c) {
        // mkdir with mode 0777 (what `mkdir` passes) gets ENOSYS through an argument condition;
        // rmdir gets the default EPERM of SCMP_ACT_ERRNO.
        c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"syscalls",
                                  {{{"names", {"mkdir"}},
                                    {"action", "SCMP_ACT_ERRNO"},
                                    {"errnoRet", 38},
                                    {"args", {{{"index", 1}, {"value", 0777}, {"op", "SCMP_CMP_EQ"}}}}},
                                   {{"names", {"mkdirat"}},
                                    {"action", "SCMP_ACT_ERRNO"},
                                    {"errnoRet", 38},
                                    {"args", {{{"index", 2}, {"value", 0777}, {"op", "SCMP_CMP_EQ"}}}}},
                                   {{"names", {"rmdir", "unlinkat"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
      });
  auto r = bh({"run", "--bundle", bundle, "errnoret"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "mkdir=1")) << r;
  EXPECT_TRUE(contains(r.out, "rmdir=1")) << r;
  EXPECT_TRUE(contains(r.err, "Function not implemented")) << r;
  EXPECT_TRUE(contains(r.err, "Operation not permitted")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/a"));
  EXPECT_TRUE(path_exists(rootfs(bundle) + "/tmp"));
}

TEST_F(SecurityTest, SeccompNotifySendsFdAndStateToListener) {
  std::string sock_path = tmp() + "/agent.sock";
  int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(ls, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(ls, 1), 0);
  std::string received;
  bool got_fd = false;
  std::thread agent([&] {
    int c = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      return;
    char buf[65536];
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct iovec iov {
      buf, sizeof buf
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
    if (n > 0)
      received.assign(buf, static_cast<size_t>(n));
    if (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm && cm->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      got_fd = true;
      ::close(fd); // no agent: the notified syscall then fails with ENOSYS
    }
    ::close(c);
  });
  std::string bundle = make_bundle({"sh", "-c", "mkdir /notified; echo rc=$?"}, [&](json &c) {
    c["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"listenerPath", sock_path},
        {"listenerMetadata", "bulkhead-test-metadata"},
        {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  });
  auto r = bh({"run", "--bundle", bundle, "notify"});
  agent.join();
  ::close(ls);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "rc=1")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/notified"));
  ASSERT_TRUE(got_fd) << received;
  auto msg = json::parse(received, nullptr, false);
  ASSERT_TRUE(msg.is_object()) << received;
  EXPECT_EQ(msg["fds"], json::array({"seccompFd"})) << received;
  EXPECT_EQ(msg["metadata"], "bulkhead-test-metadata") << received;
  EXPECT_EQ(msg["state"]["id"], "notify") << received;
  EXPECT_TRUE(msg["pid"].is_number() && msg["pid"].get<int>() > 0) << received;
}

TEST_F(SecurityTest, SeccompNotifyOfExecReachesTheAgentToo) {
  // Each process loads its own filter, so exec hands a second notify fd to the agent.
  std::string sock_path = tmp() + "/agent.sock";
  int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(ls, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(ls, 2), 0);
  std::vector<std::string> received;
  std::thread agent([&] {
    for (int i = 0; i < 2; ++i) {
      int c = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        return;
      char buf[65536];
      alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      struct iovec iov {
        buf, sizeof buf
      };
      struct msghdr mh {};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = control;
      mh.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
      if (n > 0)
        received.emplace_back(buf, static_cast<size_t>(n));
      if (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm && cm->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        ::close(fd); // no agent: the notified syscall then fails with ENOSYS
      }
      ::close(c);
    }
  });
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"listenerPath", sock_path},
        {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  });
  pid_t pid = create_and_start(bundle, "notify-exec");
  auto r = bh({"exec", "notify-exec", "sh", "-c", "mkdir /notified; echo rc=$?"});
  if (r.exit_code != 0) // unblock the agent
    ::shutdown(ls, SHUT_RDWR);
  agent.join();
  ::close(ls);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "rc=1")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/notified"));
  ASSERT_EQ(received.size(), 2u);
  auto msg = json::parse(received[1], nullptr, false);
  ASSERT_TRUE(msg.is_object()) << received[1];
  EXPECT_EQ(msg["fds"], json::array({"seccompFd"})) << received[1];
  EXPECT_EQ(msg["state"]["id"], "notify-exec") << received[1];
}

TEST_F(SecurityTest, Personality) {
#if defined(__x86_64__)
  auto r = run_container({"uname", "-m"}, [](json &c) {
    c["linux"]["personality"] = {{"domain", "LINUX32"}};
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "i686") << r;
#else
  GTEST_SKIP() << "LINUX32 check written for x86_64";
#endif
}

TEST_F(SecurityTest, IoPriorityAndScheduler) {
  auto r = run_container({"sh", "-c", "grep -E '^(policy|prio)' /proc/self/sched; cat /proc/self/stat"},
                         [](json &c) {
                           c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}, {"priority", 0}};
                           c["process"]["scheduler"] = {{"policy", "SCHED_BATCH"}, {"nice", 5}};
                         });
  ASSERT_EQ(r.exit_code, 0) << r;
  auto words = split_words(split_lines(r.out).back());
  ASSERT_GT(words.size(), 40u) << r;
  EXPECT_EQ(words[18], "5") << r; // nice
  EXPECT_EQ(words[40], "3") << r; // policy SCHED_BATCH
}

struct BadSecurity {
  const char *name;
  std::function<void(json &)> mutate;
  const char *error;
};

TEST_F(SecurityTest, BadInputFailsCleanly) {
  std::vector<BadSecurity> cases = {
      {"unknown capability", [](json &c) { c["process"]["capabilities"]["bounding"].push_back("CAP_FLY"); },
       "process.capabilities.bounding: unknown capability \"CAP_FLY\""},
      {"invalid seccomp action",
       [](json &c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                  {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_SOMETIMES"}}}}};
       },
       "unknown action \"SCMP_ACT_SOMETIMES\""},
      {"argument index",
       [](json &c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                  {"syscalls",
                                   {{{"names", {"read"}},
                                     {"action", "SCMP_ACT_ERRNO"},
                                     {"args", {{{"index", 7}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}}}}}};
       },
       "index: 7 is out of range (0-5)"},
      {"unknown arch",
       [](json &c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_VAX"}}};
       },
       "unknown architecture \"SCMP_ARCH_VAX\""},
      {"notify listener missing",
       [this](json &c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                  {"listenerPath", tmp() + "/nobody-listens.sock"},
                                  {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
       },
       "linux.seccomp.listenerPath: no seccomp agent could be reached on socket"},
  };
  if (!path_exists("/sys/module/apparmor/parameters/enabled") ||
      trim(read_file("/sys/module/apparmor/parameters/enabled")) != "Y")
    cases.push_back({"apparmor absent", [](json &c) { c["process"]["apparmorProfile"] = "bulkhead-default"; },
                     "AppArmor is not enabled on this host"});
  if (!path_exists("/sys/fs/selinux/enforce"))
    cases.push_back({"selinux absent",
                     [](json &c) { c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"; },
                     "SELinux is not enabled on this host"});
  int i = 0;
  for (const auto &bad : cases) {
    SCOPED_TRACE(bad.name);
    std::string id = "bad" + std::to_string(i++);
    std::string bundle = make_bundle({"sh", "-c", "echo ran > /ran"}, bad.mutate);
    auto r = bh({"run", "--bundle", bundle, id});
    EXPECT_TRUE(failed_cleanly(r, bad.error, id));
    EXPECT_FALSE(path_exists(rootfs(bundle) + "/ran"));
  }
}

} // namespace
