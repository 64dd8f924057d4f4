#include "security/plan.hpp"

#include "bulkhead/fd_passing.hpp"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "security/capabilities.hpp"
#include "security/lsm.hpp"
#include "security/process_attrs.hpp"
#include "security/seccomp.hpp"

namespace bulkhead::security {

Result<SecurityPlan> prepare_security(const oci::Spec &spec, const WarnFn &warn) {
  SecurityPlan plan;
  if (spec.process) {
    const oci::Process &p = *spec.process;
    if (p.capabilities)
      plan.capabilities = BH_TRY(resolve_capabilities(*p.capabilities, warn));
    plan.no_new_privileges = p.no_new_privileges;
    if (p.io_priority)
      plan.io_priority = BH_TRY(resolve_io_priority(*p.io_priority));
    if (p.scheduler)
      plan.scheduler = BH_TRY(resolve_scheduler(*p.scheduler));
    if (!p.apparmor_profile.empty()) {
      if (!apparmor_enabled())
        return failf("process.apparmorProfile {:?}: AppArmor is not enabled on this host",
                     p.apparmor_profile);
      plan.apparmor_profile = p.apparmor_profile;
    }
    if (!p.selinux_label.empty()) {
      if (!selinux_enabled())
        return failf("process.selinuxLabel {:?}: SELinux is not enabled on this host", p.selinux_label);
      plan.selinux_label = p.selinux_label;
    }
  }
  if (spec.linux) {
    const oci::Linux &l = *spec.linux;
    if (!l.mount_label.empty()) {
      // Applied by rootfs/mounts.cpp as the context= option of tmpfs, devpts and mqueue mounts.
      if (!selinux_enabled())
        return failf("linux.mountLabel {:?}: SELinux is not enabled on this host", l.mount_label);
    }
    if (l.personality)
      plan.personality = BH_TRY(resolve_personality(*l.personality));
    if (l.seccomp)
      plan.seccomp = BH_TRY(compile_seccomp(*l.seccomp, warn));
  }
  return plan;
}

Result<UniqueFd> connect_listener(const SecurityPlan &plan) {
  if (!plan.seccomp || !plan.seccomp->notify)
    return UniqueFd{};
  const std::string &path = plan.seccomp->listener_path;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return failf("linux.seccomp.listenerPath {:?}: too long", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s)
    return failf_errno("seccomp listener socket");
  if (::connect(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
    return failf_errno("linux.seccomp.listenerPath: no seccomp agent could be reached on socket {}", path);
  return s;
}

Status set_no_new_privileges(const SecurityPlan &plan) {
  if (plan.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return failf_errno("setting no_new_privs");
  return {};
}

namespace {

// The runtime-spec's ContainerProcessState, sent with the notify fd (SCM_RIGHTS).
std::string process_state(const SeccompPlan &s, const std::string &state_json) {
  nlohmann::ordered_json msg;
  auto state = nlohmann::json::parse(state_json, nullptr, false);
  msg["ociVersion"] = state.is_object() && state.contains("ociVersion") ? state["ociVersion"] : "1.2.0";
  msg["fds"] = nlohmann::json::array({"seccompFd"});
  msg["pid"] = ::getpid();
  if (state.is_object() && state.contains("pid"))
    msg["pid"] = state["pid"];
  msg["metadata"] = s.listener_metadata;
  msg["state"] = state.is_object() ? state : nlohmann::json::object();
  return msg.dump();
}

Status send_notify_fd(int sock, int notify_fd, const std::string &payload) {
  return send_fd(sock, notify_fd, payload, "the seccomp notify fd to listenerPath");
}

} // namespace

Status load_seccomp(const SecurityPlan &plan, int listener_fd, const std::string &state_json) {
  if (!plan.seccomp)
    return {};
  const SeccompPlan &s = *plan.seccomp;
  // Everything that allocates happens before the filter exists.
  std::string payload = s.notify ? process_state(s, state_json) : std::string();
  if (s.notify && listener_fd < 0)
    return fail("seccomp: SCMP_ACT_NOTIFY without a connected listener");
  struct sock_fprog prog {};
  prog.len = static_cast<unsigned short>(s.bpf.size());
  prog.filter = const_cast<sock_filter *>(s.bpf.data());
  long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s.flags, &prog);
  if (fd < 0) {
    if (errno == EINVAL)
      return failf_errno("loading the seccomp filter (flags {:#x} not supported?)", s.flags);
    return failf_errno("loading the seccomp filter");
  }
  BH_CHECK(finish_capabilities(plan));
  if (s.notify) {
    UniqueFd notify(static_cast<int>(fd));
    BH_CHECK(send_notify_fd(listener_fd, notify.get(), payload));
  }
  return {};
}

} // namespace bulkhead::security
