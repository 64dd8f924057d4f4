// bulkhead under a seccomp filter that answers ENOSYS for clone3 (as valgrind, kernels before 5.3
// and some container seccomp profiles do): create/run and exec fall back to clone(2) and still
// put the container's processes into its cgroup.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup_harness.hpp"

using namespace bh_test;

namespace {

class CloneFallback : public CgroupBase {
protected:
  // The runtime with `args`, in a child whose seccomp filter fails clone3 with ENOSYS.
  CommandResult bh_without_clone3(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {runtime_path(), "--root", root()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = tmp() + "/nc3.out", err = tmp() + "/nc3.err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (o < 0 || e < 0 || in < 0 || ::dup2(in, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0)
        ::_exit(120);
      sock_filter filter[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
      if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        ::_exit(121);
      std::vector<char *> cargv;
      for (auto &a : argv)
        cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(122);
    }
    CommandResult r;
    r.argv = argv;
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }
};

TEST_F(CloneFallback, RunWithoutClone3PutsInitIntoItsCgroup) {
  std::string id = unique_id("noclone3");
  std::string bundle = make_bundle({"cat", "/proc/self/cgroup"});
  auto r = bh_without_clone3({"run", "--bundle", bundle, id});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "0::/bulkhead/" + id + "\n")) << r;
  EXPECT_FALSE(state_dir_exists(id));
}

TEST_F(CloneFallback, ExecWithoutClone3JoinsTheContainersCgroup) {
  std::string id = unique_id("noclone3x");
  std::string bundle = make_bundle({"sleep", "1000"});
  ASSERT_GT(create_and_start(bundle, id), 0);
  auto r = bh_without_clone3({"exec", id, "cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "0::/bulkhead/" + id + "\n")) << r;
}

} // namespace
