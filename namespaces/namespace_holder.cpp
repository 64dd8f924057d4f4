#include "namespaces/namespace_holder.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include <fmt/core.h>

namespace bulkhead::ns {

Result<NamespaceHolder> NamespaceHolder::spawn(int clone_flag, const char *ns_name, int (*setup)()) {
  const char *what = ns_name ? ns_name : "placeholder";
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return failf_errno("pipe for the {} namespace holder", what);
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork of the {} namespace holder", what);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    // Only the report pipe, as fd 3: a copy of a console socket here would keep its peer from ever
    // seeing EOF, and the holder must not keep a control connection of the caller open.
    int report = wr.release();
    if (report != 3 && ::dup3(report, 3, O_CLOEXEC) < 0)
      ::_exit(1);
    ::close_range(4, ~0U, 0);
    int err = clone_flag != 0 && ::unshare(clone_flag) < 0 ? errno : 0;
    if (err == 0 && setup != nullptr)
      err = setup();
    (void)!::write(3, &err, sizeof err);
    ::close(3);
    for (;;)
      ::pause();
  }
  NamespaceHolder h;
  h.pid_ = pid;
  wr.reset();
  int err = -1;
  if (::read(rd.get(), &err, sizeof err) != sizeof err)
    return failf("the {} namespace holder died before reporting", what);
  if (err)
    return fail(fmt::format("the {} namespace holder: unshare or its setup", what), err);
  if (ns_name == nullptr)
    return h;
  std::string path = fmt::format("/proc/{}/ns/{}", pid, ns_name);
  h.fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!h.fd_)
    return failf_errno("opening {}", path);
  return h;
}

NamespaceHolder::NamespaceHolder(NamespaceHolder &&o) noexcept
    : pid_(std::exchange(o.pid_, 0)), fd_(std::move(o.fd_)) {}

NamespaceHolder::~NamespaceHolder() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

} // namespace bulkhead::ns
