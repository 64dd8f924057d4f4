// Rootless mode: bulkhead run by a user who is not root on the host, either directly (euid != 0)
// or inside a user namespace another program made (rootless podman runs its runtime as uid 0 of
// its own namespace, where root's files and cgroups are not its own).
#pragma once

#include <optional>
#include <string>

#include "cgroups/systemd_scope.hpp"

namespace bulkhead {

// Whether this process lives in the host's (initial) user namespace: its uid_map is the identity
// of every id.
bool in_initial_user_namespace();

// euid != 0, or a user namespace other than the host's: root's state directory, cgroups and
// device nodes are out of reach.
bool running_rootless();

// --systemd-cgroup: a rootless caller's (running_rootless()) scopes belong to its own user manager
// (systemdUser, as runc and crun), root's to PID 1. The record names which ("systemd-user" or
// "systemd"), so update and delete reach the manager that made the scope.
cgroups::SystemdManager systemd_manager(bool rootless);
std::string systemd_driver_name(cgroups::SystemdManager manager);
std::optional<cgroups::SystemdManager> systemd_manager_of(const std::string &driver_name);

// default_state_root() is public: include/bulkhead/runtime.hpp.

} // namespace bulkhead
