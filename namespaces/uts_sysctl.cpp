#include "namespaces/uts_sysctl.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::ns {

Status set_hostname(const std::string &hostname, const std::string &domainname) {
  if (!hostname.empty() && ::sethostname(hostname.data(), hostname.size()) < 0)
    return failf_errno("setting hostname {:?}", hostname);
  if (!domainname.empty() && ::setdomainname(domainname.data(), domainname.size()) < 0)
    return failf_errno("setting domainname {:?}", domainname);
  return {};
}

Status apply_sysctls(int proc_fd, const std::map<std::string, std::string> &sysctl) {
  for (const auto &[key, value] : sysctl) {
    std::string rel = "sys/" + key;
    for (size_t i = 4; i < rel.size(); ++i)
      if (rel[i] == '.')
        rel[i] = '/';
    if (key.find("..") != std::string::npos)
      return failf("sysctl {:?}: key may not contain \"..\"", key);
    // Symlinks under /proc/sys do not exist; refusing them (and magic links) keeps the write on
    // the procfs we verified.
    struct open_how how {};
    how.flags = O_WRONLY | O_CLOEXEC | O_TRUNC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, proc_fd, rel.c_str(), &how, sizeof how)));
    if (!fd)
      return failf_errno("sysctl {}: opening /proc/{}", key, rel);
    if (!write_all(fd.get(), value, rel))
      return failf_errno("sysctl {}={:?}", key, value);
  }
  return {};
}

Status write_time_offsets(const std::map<std::string, oci::TimeOffset> &offsets) {
  if (offsets.empty())
    return {};
  // The kernel accepts one clock per write.
  UniqueFd fd(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening /proc/self/timens_offsets");
  for (const auto &[clock, off] : offsets) {
    auto line = fmt::format("{} {} {}", clock, off.secs, off.nanosecs);
    if (::write(fd.get(), line.data(), line.size()) < 0)
      return failf_errno("time offset {:?}", line);
  }
  return {};
}

} // namespace bulkhead::ns
