#include "security/lsm.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/statfs.h>

#include "bulkhead/io.hpp"
#include "security/plan.hpp"

namespace bulkhead::security {

namespace {
constexpr long kSelinuxMagic = 0xf97cff8c;
} // namespace

bool apparmor_enabled() {
  auto v = read_file_at(AT_FDCWD, "/sys/module/apparmor/parameters/enabled");
  return v && !v->empty() && (*v)[0] == 'Y';
}

bool selinux_enabled() {
  struct statfs sfs {};
  return ::statfs("/sys/fs/selinux", &sfs) == 0 && static_cast<long>(sfs.f_type) == kSelinuxMagic;
}

Status apply_lsm_labels(const SecurityPlan &plan, int proc_fd) {
  if (!plan.apparmor_profile.empty()) {
    // Takes effect at the next execve. The LSM-specific file exists since Linux 5.1.
    auto text = "exec " + plan.apparmor_profile;
    auto r = write_procfs(proc_fd, "thread-self/attr/apparmor/exec", text);
    if (!r && r.error().code == ENOENT)
      r = write_procfs(proc_fd, "thread-self/attr/exec", text);
    if (!r)
      return tl::unexpected(with_context(r.error(), "applying AppArmor profile " + plan.apparmor_profile));
  }
  if (!plan.selinux_label.empty()) {
    auto r = write_procfs(proc_fd, "thread-self/attr/selinux/exec", plan.selinux_label);
    if (!r && r.error().code == ENOENT)
      r = write_procfs(proc_fd, "thread-self/attr/exec", plan.selinux_label);
    if (!r)
      return tl::unexpected(with_context(r.error(), "applying SELinux label " + plan.selinux_label));
  }
  return {};
}

} // namespace bulkhead::security
