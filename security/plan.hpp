// Process security, split like every subsystem: the parent resolves and compiles everything into
// a SecurityPlan before clone (capability numbers, seccomp BPF, LSM presence, attribute values);
// container init only applies it with small, allocation-light steps right before execve.
//
// Child-side order (runtime/init.cpp):
//   open_private_procfs          before the rootfs is built: the only procfs we ever write to
//   apply_process_attributes     personality, ioPriority, scheduler (still full root)
//   apply_lsm_labels             AppArmor/SELinux exec labels through that procfs fd
//   apply_capabilities_and_user  bounding drop, KEEPCAPS + setresuid, capset, ambient raise
//   set_no_new_privileges
//   load_seccomp                 last step before execve (after startContainer hooks)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <linux/filter.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"

namespace bulkhead::security {

using WarnFn = std::function<void(const std::string &)>;

// Capability sets as bit masks (bit n = capability n), already checked against the kernel.
struct CapabilityPlan {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

struct SeccompPlan {
  std::vector<sock_filter> bpf;  // seccomp_export_bpf output, loaded as is by init
  unsigned int flags = 0;        // SECCOMP_FILTER_FLAG_* for seccomp(2)
  bool notify = false;           // some rule uses SCMP_ACT_NOTIFY: NEW_LISTENER is in flags
  std::string listener_path;     // unix socket the notify fd is sent to
  std::string listener_metadata; // opaque string forwarded to the agent
};

struct SchedulerPlan {
  uint32_t policy = 0;
  uint64_t flags = 0;
  int32_t nice = 0;
  uint32_t priority = 0;
  uint64_t runtime = 0, deadline = 0, period = 0;
};

struct SecurityPlan {
  std::optional<CapabilityPlan> capabilities; // nullopt: process.capabilities absent, no change
  std::optional<SeccompPlan> seccomp;
  bool no_new_privileges = false;
  std::optional<unsigned long> personality;
  std::optional<int> io_priority; // IOPRIO_PRIO_VALUE(class, level)
  std::optional<SchedulerPlan> scheduler;
  std::string apparmor_profile; // non-empty only when AppArmor is enabled
  std::string selinux_label;    // non-empty only when SELinux is enabled
};

// Parent side: validates and compiles every security-related field of the spec. Unknown syscall
// names are reported through `warn` and skipped; everything else unknown is an error.
Result<SecurityPlan> prepare_security(const oci::Spec &spec, const WarnFn &warn);

// ---- child side -------------------------------------------------------------------------------

// A procfs instance the container cannot have tampered with: a fresh detached proc mount when the
// kernel allows it, else the /proc this mount namespace inherited from the host. Verified by
// filesystem magic and root inode. Call before any container-controlled mount happens.
Result<UniqueFd> open_private_procfs();
// Whether applying `plan` writes to procfs (LSM exec labels); without that, and without sysctls,
// no private procfs is needed.
inline bool writes_procfs(const SecurityPlan &plan) {
  return !plan.apparmor_profile.empty() || !plan.selinux_label.empty();
}
// Fails when a proc or sysfs mount destination is, or passes through, a symlink in the rootfs.
Status check_special_mount_destinations(int root_fd, const oci::Spec &spec);
// Writes `value` to `relative` below a verified procfs fd; the opened file is verified too.
Status write_procfs(int proc_fd, const std::string &relative, std::string_view value);

Status apply_process_attributes(const SecurityPlan &plan);
Status apply_lsm_labels(const SecurityPlan &plan, int proc_fd);
// Drops the bounding set, switches to process.user keeping capabilities, then sets effective,
// permitted and inheritable and raises ambient. Without process.capabilities only the user
// switch happens. When a seccomp filter has to be loaded without no_new_privs, CAP_SYS_ADMIN is
// kept until load_seccomp.
Status apply_capabilities_and_user(const SecurityPlan &plan, const oci::User &user);
Status set_no_new_privileges(const SecurityPlan &plan);
// Loads the precompiled filter. With SCMP_ACT_NOTIFY, `listener_fd` is a unix socket already
// connected to listenerPath (by the parent); the notify fd and the container process state are
// sent over it, then the fd is closed. `state_json` is the container state (from `start`).
Status load_seccomp(const SecurityPlan &plan, int listener_fd, const std::string &state_json);

// Parent side for SCMP_ACT_NOTIFY: connects to listenerPath (host path) so init can send later.
Result<UniqueFd> connect_listener(const SecurityPlan &plan);

} // namespace bulkhead::security
