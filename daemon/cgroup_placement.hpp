// Where bulkheadd puts its containers' cgroups (--cgroup-driver, --cgroup-parent).
//   cgroupfs: a directory per container under a cgroup path ("/bulkhead/NAME"), as LXC's
//             lxc.payload; the runtime makes and removes it.
//   systemd:  a transient scope per container, PREFIX-NAME.scope in a slice ("machine.slice",
//             where systemd puts containers and VMs), made by the runtime's systemd driver over
//             D-Bus with Delegate=yes (cgroups/systemd_scope.hpp). systemd then knows each
//             container as a unit (systemctl status, its accounting, its slice's limits) and
//             never treats a container's processes as strays of another unit.
// "auto" (the default) is systemd when PID 1 is systemd and --cgroup-parent is not a cgroupfs
// path (one starting with "/" keeps the cgroupfs driver, as several daemons on one machine use).
#pragma once

#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

struct CgroupPlacement {
  bool systemd = false;
  std::string parent; // cgroupfs: "/bulkhead"; systemd: the slice, "machine.slice"
  std::string prefix; // systemd: the scope's prefix, "bulkhead"

  std::string driver() const { return systemd ? "systemd" : "cgroupfs"; }
  // linux.cgroupsPath of container `name`: "/bulkhead/NAME" or "machine.slice:bulkhead:NAME".
  std::string cgroups_path(const std::string &name) const;
};

// `driver` is "auto", "systemd" or "cgroupfs"; `parent` as given ("" is the driver's default:
// "/bulkhead" or "machine.slice"; with systemd "SLICE" or "SLICE:PREFIX"). `systemd_booted`: PID 1
// is systemd (/run/systemd/system exists). Pure: the caller checks that the bus answers.
Result<CgroupPlacement> resolve_cgroup_placement(const std::string &driver, const std::string &parent,
                                                 bool systemd_booted);

} // namespace bulkhead::daemon
