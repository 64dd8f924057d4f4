#include "runtime/process_setup.hpp"

#include <csignal>
#include <fcntl.h>
#include <grp.h>
#include <linux/limits.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bulkhead::runtime {

namespace {

bool is_executable_file(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0 || !S_ISREG(st.st_mode))
    return false;
  return ::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) == 0;
}

} // namespace

Status apply_rlimits(const oci::Process &p) {
  for (const auto &rl : p.rlimits) {
    auto resource = oci::rlimit_resource(rl.type);
    if (!resource)
      return failf("process.rlimits: unknown type {:?}", rl.type);
    struct rlimit lim {
      rl.soft, rl.hard
    };
    if (::setrlimit(*resource, &lim) < 0)
      return failf_errno("setting {} to {}/{}", rl.type, rl.soft, rl.hard);
  }
  return {};
}

Status enter_cwd(const std::string &cwd) {
  if (::chdir(cwd.c_str()) < 0)
    return failf_errno("process.cwd {:?}", cwd);
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf) || buf[0] != '/')
    return failf("process.cwd {:?}: resolves outside the container root", cwd);
  return {};
}

Result<std::string> find_executable(const oci::Process &p) {
  const std::string &name = p.args.at(0);
  if (name.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(name.c_str(), &st) < 0)
      return failf_errno("exec: {:?}", name);
    if (S_ISDIR(st.st_mode))
      return fail(fmt::format("exec: {:?}", name), EISDIR);
    if (!is_executable_file(name))
      return fail(fmt::format("exec: {:?}", name), EACCES);
    return name;
  }
  std::string path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto &e : p.env)
    if (e.rfind("PATH=", 0) == 0)
      path_env = e.substr(5);
  size_t pos = 0;
  while (pos <= path_env.size()) {
    size_t end = path_env.find(':', pos);
    if (end == std::string::npos)
      end = path_env.size();
    std::string_view dir = std::string_view(path_env).substr(pos, end - pos);
    std::string candidate = fmt::format("{}/{}", dir.empty() ? std::string_view(".") : dir, name);
    if (is_executable_file(candidate))
      return candidate;
    pos = end + 1;
  }
  return failf("exec: {:?}: executable file not found in $PATH", name);
}

void reset_signals() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    ::sigaction(sig, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

} // namespace bulkhead::runtime
