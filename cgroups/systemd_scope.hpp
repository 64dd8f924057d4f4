// The systemd cgroup driver (`bulkhead --systemd-cgroup`): the container's cgroup is a transient
// scope unit that systemd creates over D-Bus (sd-bus), with Delegate=yes so the runtime still
// writes the cgroup files systemd has no property for. The pure part (cgroupsPath parsing, the
// unit properties of linux.resources) is unit-tested; SystemdBus talks to the real manager.
//
// Process model: the runtime is single-threaded and calls the bus synchronously; the connection is
// never used by a forked child (container init only ever sees its CLOEXEC socket, and execs).
// libsystemd is loaded with dlopen on the first connection, so the static `bulkhead` binary (there
// is no libsystemd.a in Debian) and every command without --systemd-cgroup pay nothing for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::cgroups {

// Which systemd manager makes the scope: PID 1 (root), or the calling user's own manager
// (user@UID.service, reached on the user's bus) for a rootless container, as runc and crun do.
enum class SystemdManager { System, User };

// linux.cgroupsPath "slice:prefix:name", resolved as runc does.
struct SystemdPath {
  std::string slice;     // "system.slice" (an empty slice field means this)
  std::string slice_dir; // the slice's cgroup below the cgroup2 root: "/system.slice", "" for -.slice
  std::string unit;      // "prefix-name.scope" ("name.scope" with an empty prefix)
};

// "a-b.slice" -> "/a.slice/a-b.slice"; "-.slice" (the root slice) -> "". The value must end in
// ".slice" and hold no "/", no "..", no empty dash-separated part.
Result<std::string> expand_slice(const std::string &slice);

// An empty cgroupsPath is "system.slice:bulkhead:<id>" ("user.slice:bulkhead:<id>" in a user's
// manager), an empty slice field that slice. Anything that is not three colon-separated fields, or
// names a slice/unit systemd would refuse, is an error naming it.
Result<SystemdPath> parse_systemd_path(const std::string &cgroups_path, const std::string &id,
                                       SystemdManager manager = SystemdManager::System);

// One unit property, all of type "t" (uint64); UINT64_MAX is systemd's "infinity".
struct UnitProperty {
  std::string name;
  uint64_t value = 0;
  bool operator==(const UnitProperty &) const = default;
};

// The resources systemd manages itself, as unit properties (MemoryMax, MemoryLow, MemorySwapMax,
// CPUWeight, CPUQuotaPerSecUSec, CPUQuotaPeriodUSec, TasksMax), converted as runc's systemd driver
// does. Set as properties, systemd keeps them when it re-applies the unit's cgroup settings (on
// daemon-reload), instead of resetting files written behind its back to its defaults.
Result<std::vector<UnitProperty>> systemd_properties(const oci::Resources &r);

class SystemdBus {
public:
  // Fails, naming what it looked at, when systemd is not PID 1 here (/run/systemd/system missing)
  // or neither the system bus nor (as root) systemd's private socket answers. User: the user's
  // bus ($DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus), else the user manager's private
  // socket $XDG_RUNTIME_DIR/systemd/private (as `systemctl --user` without dbus-user-session).
  static Result<SystemdBus> connect(SystemdManager manager = SystemdManager::System);

  SystemdBus(SystemdBus &&) noexcept;
  SystemdBus &operator=(SystemdBus &&) noexcept;
  ~SystemdBus();

  // StartTransientUnit of the scope with PIDs=[pid], Delegate=yes and `props`; returns once the
  // job is done (JobRemoved), with the scope's cgroup (read from /proc/<pid>/cgroup; in a user's
  // manager below /user.slice/user-UID.slice/user@UID.service).
  Result<std::string> start_scope(const SystemdPath &path, pid_t pid, const std::vector<UnitProperty> &props,
                                  const std::string &description);
  // SetUnitProperties(runtime=true): `update` on a running container.
  Status set_properties(const std::string &unit, const std::vector<UnitProperty> &props);
  // StopUnit (waiting for the job), ResetFailedUnit, then waits (bounded) until systemd has
  // unloaded the unit. A unit that is already gone is fine.
  Status stop_unit(const std::string &unit);
  // True while systemd knows the unit (GetUnit answers).
  Result<bool> unit_loaded(const std::string &unit);

private:
  struct Impl;
  explicit SystemdBus(std::unique_ptr<Impl> impl);
  // Waits for the JobRemoved signal of `job`; its result ("done", "failed", ...).
  Result<std::string> wait_job(const std::string &job, const std::string &unit);
  std::unique_ptr<Impl> impl_;
};

} // namespace bulkhead::cgroups
