#include "security/capabilities.hpp"

#include <cctype>
#include <fcntl.h>
#include <grp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::security {

namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

Status resolve_set(const std::vector<std::string> &names, const char *set, int last, uint64_t &out,
                   const WarnFn &warn) {
  for (const auto &name : names) {
    auto cap = capability_from_name(name);
    if (!cap)
      return failf("process.capabilities.{}: {}", set, cap.error().message);
    if (*cap > last) {
      if (warn)
        warn(fmt::format("process.capabilities.{}: {} is not supported by this kernel, skipped", set, name));
      continue;
    }
    out |= bit(*cap);
  }
  return {};
}

Status set_proc_caps(uint64_t effective, uint64_t permitted, uint64_t inheritable, int last) {
  cap_t caps = cap_init();
  if (!caps)
    return failf_errno("capabilities: cap_init");
  for (int c = 0; c <= last; ++c) {
    cap_value_t v = c;
    if (effective & bit(c))
      cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET);
    if (permitted & bit(c))
      cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET);
    if (inheritable & bit(c))
      cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_SET);
  }
  int rc = cap_set_proc(caps);
  int saved = errno;
  cap_free(caps);
  if (rc < 0)
    return fail("capabilities: setting effective/permitted/inheritable", saved);
  return {};
}

} // namespace

Result<int> capability_from_name(std::string_view name) {
  bool well_formed = name.size() > 4 && name.substr(0, 4) == "CAP_";
  for (char c : name)
    well_formed = well_formed && (std::isupper(static_cast<unsigned char>(c)) || c == '_' ||
                                  std::isdigit(static_cast<unsigned char>(c)));
  if (!well_formed)
    return failf("unknown capability {:?} (expected a name like CAP_NET_ADMIN)", name);
  std::string lower(name);
  for (char &c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  cap_value_t v = 0;
  if (cap_from_name(lower.c_str(), &v) < 0 || v < 0 || v > 63)
    return failf("unknown capability {:?}", name);
  return static_cast<int>(v);
}

std::string capability_name(int cap) {
  char *n = cap_to_name(cap);
  if (!n)
    return fmt::format("CAP_{}", cap);
  std::string s(n);
  cap_free(n);
  for (char &c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

int last_capability() {
  static int cached = [] {
    auto text = read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap");
    if (text) {
      try {
        return std::stoi(*text);
      } catch (...) {
      }
    }
    return static_cast<int>(CAP_LAST_CAP);
  }();
  return cached;
}

Result<CapabilityPlan> resolve_capabilities(const oci::Capabilities &caps, const WarnFn &warn) {
  CapabilityPlan p;
  int last = last_capability();
  BH_CHECK(resolve_set(caps.bounding, "bounding", last, p.bounding, warn));
  BH_CHECK(resolve_set(caps.effective, "effective", last, p.effective, warn));
  BH_CHECK(resolve_set(caps.inheritable, "inheritable", last, p.inheritable, warn));
  BH_CHECK(resolve_set(caps.permitted, "permitted", last, p.permitted, warn));
  BH_CHECK(resolve_set(caps.ambient, "ambient", last, p.ambient, warn));
  // The kernel only raises an ambient capability that is both permitted and inheritable. `runc
  // spec` lists ambient capabilities without inheritable ones; like runc we skip those quietly.
  uint64_t unraisable = p.ambient & ~(p.permitted & p.inheritable);
  p.ambient &= ~unraisable;
  return p;
}

// ---- child side -------------------------------------------------------------------------------

namespace {

Status switch_user(const oci::User &u) {
  std::vector<gid_t> groups(u.additional_gids.begin(), u.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) < 0) {
    // A user namespace whose setgroups is "deny" only rejects a change: an empty list is fine.
    if (!(errno == EPERM && groups.empty()))
      return failf_errno("setting additional gids");
  }
  if (::setresgid(u.gid, u.gid, u.gid) < 0)
    return failf_errno("setting gid {}", u.gid);
  if (::setresuid(u.uid, u.uid, u.uid) < 0)
    return failf_errno("setting uid {}", u.uid);
  if (u.umask)
    ::umask(*u.umask);
  return {};
}

bool seccomp_needs_admin(const SecurityPlan &plan) { return plan.seccomp && !plan.no_new_privileges; }

} // namespace

Status apply_capabilities_and_user(const SecurityPlan &plan, const oci::User &user) {
  if (!plan.capabilities)
    return switch_user(user);
  const CapabilityPlan &c = *plan.capabilities;
  int last = last_capability();
  for (int cap = 0; cap <= last; ++cap) {
    if (c.bounding & bit(cap))
      continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return failf_errno("capabilities: dropping {} from the bounding set", capability_name(cap));
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return failf_errno("capabilities: PR_SET_KEEPCAPS");
  BH_CHECK(switch_user(user));
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return failf_errno("capabilities: PR_SET_KEEPCAPS");
  // Loading a filter without no_new_privs needs CAP_SYS_ADMIN; load_seccomp drops it again.
  uint64_t extra = seccomp_needs_admin(plan) ? bit(CAP_SYS_ADMIN) : 0;
  BH_CHECK(set_proc_caps(c.effective | extra, c.permitted | extra, c.inheritable, last));
  // prctl directly: libcap's cap_reset_ambient first probes every capability with
  // PR_CAP_AMBIENT_IS_SET (41 syscalls) before the one CLEAR_ALL. EINVAL: a kernel without ambient
  // capabilities (< 4.3), where there is nothing to clear.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return failf_errno("capabilities: clearing ambient");
  for (int cap = 0; cap <= last; ++cap)
    if ((c.ambient & bit(cap)) && ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return failf_errno("capabilities: raising ambient {}", capability_name(cap));
  return {};
}

// Called by load_seccomp once the filter is in place.
Status finish_capabilities(const SecurityPlan &plan) {
  if (!plan.capabilities || !seccomp_needs_admin(plan))
    return {};
  const CapabilityPlan &c = *plan.capabilities;
  if ((c.effective & bit(CAP_SYS_ADMIN)) && (c.permitted & bit(CAP_SYS_ADMIN)))
    return {};
  auto r = set_proc_caps(c.effective, c.permitted, c.inheritable, last_capability());
  if (!r)
    return fail("capabilities: dropping CAP_SYS_ADMIN after loading the seccomp filter (does "
                "the profile allow capset?)",
                r.error().code);
  return {};
}

} // namespace bulkhead::security
