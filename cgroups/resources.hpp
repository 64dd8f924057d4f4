// Making linux.resources take effect on a container's cgroup: controllers enabled down the
// hierarchy, v2 files written (convert.hpp), the device eBPF program attached (device_filter.hpp).
// A resource whose controller cannot reach the cgroup is an error naming the field, the
// controller and the cgroup, never a silent skip.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "cgroups/cgroup.hpp"
#include "oci/spec.hpp"

namespace bulkhead::cgroups {

enum class ApplyMode {
  Create, // a fresh cgroup, before any process is in it
  Update, // a running container: honours memory.checkBeforeUpdate
};

// Writes "+<controller>" into cgroup.subtree_control of every ancestor of `cg` that does not have
// it yet. Controllers the hierarchy does not offer are left for the caller's availability check.
Status enable_controllers(const Cgroup &cg, const std::set<std::string> &controllers);

// Offers the container every controller the hierarchy has: each ancestor of `cg` gets every
// controller of its cgroup.controllers in its cgroup.subtree_control (as runc does), so systemd or
// an engine inside the container can delegate. Best effort per controller: one an ancestor cannot
// pass on (it holds processes itself, ...) is skipped here, and apply_resources reports it
// precisely when a limit needs it.
void enable_all_controllers(const Cgroup &cg);

// Enables what `r` needs, checks every controller reached `cg`, then writes the files. Device
// rules are not handled here (see setup_container_cgroup / update_device_rules).
Status apply_resources(const Cgroup &cg, const oci::Resources &r, ApplyMode mode);

// The device rules enforced for a container, in order (later rules win): the spec's
// linux.resources.devices, then the defaults every container gets (as runc: mknod of any node,
// null, zero, full, random, urandom, tty, ptmx, pts/*, net/tun). A node listed in linux.devices
// gets no access of its own: as in runc, only linux.resources.devices grants it, so a config that
// denies everything is not widened by the nodes it asks to be created.
std::vector<oci::DeviceCgroupRule>
effective_device_rules(const std::vector<oci::DeviceCgroupRule> &spec_rules);

// One warning per device rule whose access holds letters other than r, w and m. runc accepts and
// ignores them (engines write "rwa"), so bulkhead does too, but says so.
std::vector<std::string> device_rule_warnings(const std::vector<oci::DeviceCgroupRule> &rules);

// Everything `create` does to the fresh cgroup before clone3: every controller offered, resources,
// then the device filter.
// `device_filter` false: no eBPF device program (a rootless caller cannot load one, and has no
// device nodes of its own to guard: its /dev entries are binds of the host's; runc and crun skip
// the device cgroup in rootless mode too).
Status setup_container_cgroup(const Cgroup &cg, const oci::Linux &linux, bool device_filter = true);

// True when `r` asks for something only a cgroup controller can provide (devices excluded).
bool requests_controllers(const std::optional<oci::Resources> &r);

// Whitespace-separated words of a cgroup.controllers / cgroup.subtree_control file.
std::set<std::string> parse_controller_list(const std::string &text);

} // namespace bulkhead::cgroups
