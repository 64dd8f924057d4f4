// seccomp as runc applies it (issue 16): a syscall above every one the profile names fails with
// ENOSYS, so libc falls back (clone3 -> clone), while an older syscall the profile does not allow
// still gets the profile's default errno; startContainer hooks run under the filter.
#include <unistd.h>

#include "harness.hpp"

using namespace bh_test;

namespace {

class SeccompEnosys : public BulkheadTest {};

TEST_F(SeccompEnosys, SyscallsNewerThanTheProfileFailWithEnosys) {
  if (runtime_is_runc())
    GTEST_SKIP() << "runc spec writes no seccomp profile";
  if (::access("/usr/bin/cc", X_OK) != 0)
    GTEST_SKIP() << "needs a C compiler for the static helper";
  // A static helper: busybox cannot make arbitrary syscalls.
  std::string src = tmp() + "/sys.c", helper = tmp() + "/sys";
  ASSERT_TRUE(write_file(src, R"(#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
static void try(const char *name, long nr) {
  long r = syscall(nr, 0, 0, 0, 0);
  printf("%s:%ld:%d\n", name, r, r < 0 ? errno : 0);
}
int main(void) {
  try("1000", 1000);
  try("kexec_load", SYS_kexec_load);
  return 0;
}
)"));
  auto cc = run_command({"/usr/bin/cc", "-static", "-O1", "-o", helper, src});
  ASSERT_TRUE(cc.ok()) << cc;

  // The profile `bulkhead spec` writes: default errno EPERM, an allow list of known syscalls.
  std::string dir = make_temp_dir("spec");
  auto spec = bh({"spec", "--bundle", dir});
  ASSERT_TRUE(spec.ok()) << spec;
  json profile = json::parse(read_file(dir + "/config.json"))["linux"]["seccomp"];
  ASSERT_EQ(profile.value("defaultAction", ""), "SCMP_ACT_ERRNO");

  std::string bundle = make_bundle({"/bin/sysprobe"}, [&](json &c) { c["linux"]["seccomp"] = profile; });
  ASSERT_EQ(::link(helper.c_str(), (rootfs(bundle) + "/bin/sysprobe").c_str()), 0);
  auto r = bh({"run", "--bundle", bundle, "enosys-" + std::to_string(::getpid())});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "1000:-1:38\n")) << "syscall 1000 did not fail with ENOSYS\n" << r;
  EXPECT_TRUE(contains(r.out, "kexec_load:-1:1\n")) << "an older, refused syscall lost its EPERM\n" << r;
}

TEST_F(SeccompEnosys, StartContainerHooksRunUnderTheSeccompFilter) {
  // The profile forbids mkdir; the container's own process never needs it, the hook does.
  std::string bundle = make_bundle({"sleep", "100"}, [](json &c) {
    c["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
    c["hooks"]["startContainer"] = {{{"path", "/bin/mkdir"}, {"args", {"mkdir", "/made-by-hook"}}}};
  });
  std::string id = "seccomp-hook-" + std::to_string(::getpid());
  ASSERT_GT(create(bundle, id), 0);
  auto r = bh({"start", id});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "startContainer hook /bin/mkdir")) << r;
  EXPECT_TRUE(contains(r.err, "Operation not permitted")) << r;
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/made-by-hook"));
}

} // namespace
