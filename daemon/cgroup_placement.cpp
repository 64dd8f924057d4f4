#include "daemon/cgroup_placement.hpp"

#include <fmt/format.h>

#include "cgroups/systemd_scope.hpp"

namespace bulkhead::daemon {

std::string CgroupPlacement::cgroups_path(const std::string &name) const {
  return systemd ? parent + ":" + prefix + ":" + name : parent + "/" + name;
}

Result<CgroupPlacement> resolve_cgroup_placement(const std::string &driver, const std::string &parent,
                                                 bool systemd_booted) {
  if (driver != "auto" && driver != "systemd" && driver != "cgroupfs")
    return failf("--cgroup-driver {:?}: must be auto, systemd or cgroupfs", driver);
  bool cgroupfs_path = parent.starts_with("/");
  CgroupPlacement p;
  p.systemd = driver == "systemd" || (driver == "auto" && systemd_booted && !cgroupfs_path);
  if (!p.systemd) {
    p.parent = parent.empty() ? "/bulkhead" : parent;
    if (!p.parent.starts_with("/") || p.parent.find("..") != std::string::npos || p.parent.ends_with("/"))
      return failf("--cgroup-parent {:?}: the cgroupfs driver takes a cgroup path such as /bulkhead (a slice "
                   "such as machine.slice needs --cgroup-driver systemd)",
                   parent);
    return p;
  }
  if (cgroupfs_path)
    return failf("--cgroup-parent {:?}: the systemd driver takes a slice, SLICE or SLICE:PREFIX (e.g. "
                 "machine.slice:bulkhead), not a cgroup path",
                 parent);
  if (!systemd_booted)
    return fail("--cgroup-driver systemd: systemd is not PID 1 here (no /run/systemd/system)");
  std::string slice = parent.empty() ? "machine.slice" : parent;
  p.prefix = "bulkhead";
  if (auto colon = slice.find(':'); colon != std::string::npos) {
    p.prefix = slice.substr(colon + 1);
    slice.resize(colon);
  }
  // The runtime's own parser decides, so a parent the daemon accepts is one every create accepts.
  std::string probe = fmt::format("{}:{}:probe", slice, p.prefix);
  if (auto parsed = cgroups::parse_systemd_path(probe, "probe"); !parsed)
    return tl::unexpected(with_context(parsed.error(), fmt::format("--cgroup-parent {:?}", parent)));
  if (p.prefix.empty())
    return failf("--cgroup-parent {:?}: the scope prefix after ':' is empty", parent);
  p.parent = slice;
  return p;
}

} // namespace bulkhead::daemon
