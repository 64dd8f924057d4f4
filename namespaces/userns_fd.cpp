#include "namespaces/userns_fd.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"

namespace bulkhead::ns {

Result<UniqueFd> userns_with_maps(const std::string &uid_map, const std::string &gid_map) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("pipe for the user namespace holder");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork of the user namespace holder");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    int err = ::unshare(CLONE_NEWUSER) < 0 ? errno : 0;
    (void)!::write(wr.get(), &err, sizeof err);
    for (;;)
      ::pause(); // until the parent holds the namespace's fd and kills us
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  } reap{pid};
  wr.reset();
  int err = -1;
  if (::read(rd.get(), &err, sizeof err) != sizeof err)
    return fail("the user namespace holder died before reporting");
  if (err)
    return fail("unshare(CLONE_NEWUSER) for an id-mapped mount", err);
  // Root of the parent namespace writes any number of ranges: no newuidmap, no setgroups "deny".
  for (auto [file, map] : {std::pair{"uid_map", &uid_map}, std::pair{"gid_map", &gid_map}}) {
    std::string path = fmt::format("/proc/{}/{}", pid, file);
    BH_CHECK(context(write_file_at(AT_FDCWD, path, *map, O_WRONLY), "writing " + path));
  }
  std::string ns = fmt::format("/proc/{}/ns/user", pid);
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", ns);
  return fd;
}

} // namespace bulkhead::ns
