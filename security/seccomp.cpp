#include "security/seccomp.hpp"

#include <cerrno>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "bulkhead/io.hpp"
#include "security/seccomp_enosys.hpp"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace bulkhead::security {

std::string libseccomp_version() {
  const scmp_version *v = ::seccomp_version();
  return v ? fmt::format("{}.{}.{}", v->major, v->minor, v->micro) : "unknown";
}

namespace {

struct ScmpCtx {
  scmp_filter_ctx ctx = nullptr;
  ~ScmpCtx() {
    if (ctx)
      seccomp_release(ctx);
  }
};

Result<scmp_compare> compare_op(const std::string &op) {
  static const std::map<std::string, scmp_compare, std::less<>> ops = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  auto it = ops.find(op);
  if (it == ops.end())
    return failf("unknown operator {:?}", op);
  return it->second;
}

std::string lower_without_prefix(const std::string &name, std::string_view prefix) {
  std::string s = name.substr(prefix.size());
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  // seccomp_export_bpf only writes to an fd: a memfd keeps the program in memory.
  UniqueFd mem(::memfd_create("bulkhead-seccomp", MFD_CLOEXEC));
  if (!mem)
    return failf_errno("seccomp: memfd_create");
  int rc = seccomp_export_bpf(ctx, mem.get());
  if (rc < 0)
    return fail("seccomp: exporting the BPF program", -rc);
  if (::lseek(mem.get(), 0, SEEK_SET) < 0)
    return failf_errno("seccomp: lseek");
  std::string bytes = BH_TRY(read_fd(mem.get(), "seccomp BPF"));
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
    return failf("seccomp: exported program has a bad size ({} bytes)", bytes.size());
  std::vector<sock_filter> prog(bytes.size() / sizeof(sock_filter));
  std::memcpy(prog.data(), bytes.data(), bytes.size());
  if (prog.size() > BPF_MAXINSNS)
    return failf("seccomp: the filter has {} instructions, the kernel accepts at most {}", prog.size(),
                 BPF_MAXINSNS);
  return prog;
}

// Per architecture of the filter, the highest syscall number the profile names (any action, even
// the default's: such a syscall is known to the profile's author).
std::vector<ArchLimit> named_syscall_limits(scmp_filter_ctx ctx, const oci::Seccomp &s) {
  std::vector<uint32_t> arches{seccomp_arch_native()};
  for (const auto &name : s.architectures)
    if (auto a = seccomp_arch(name); a && *a != SCMP_ARCH_X32 && seccomp_arch_exist(ctx, *a) == 0 &&
                                     std::find(arches.begin(), arches.end(), *a) == arches.end())
      arches.push_back(*a);
  std::vector<ArchLimit> out;
  for (uint32_t arch : arches) {
    int max = -1;
    for (const auto &rule : s.syscalls)
      for (const auto &name : rule.names)
        max = std::max(max, seccomp_syscall_resolve_name_arch(arch, name.c_str()));
    if (max >= 0) // negative numbers are libseccomp's pseudo syscalls
      out.push_back({arch, static_cast<uint32_t>(max)});
  }
  return out;
}

} // namespace

Result<uint32_t> seccomp_action(const std::string &name, const std::optional<uint32_t> &errno_ret) {
  bool takes_errno = name == "SCMP_ACT_ERRNO" || name == "SCMP_ACT_TRACE";
  if (errno_ret && !takes_errno)
    return failf("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {}", name);
  if (errno_ret && *errno_ret > 0xffff)
    return failf("errnoRet {} is out of range (0-65535)", *errno_ret);
  uint16_t ret = errno_ret ? static_cast<uint16_t>(*errno_ret) : static_cast<uint16_t>(EPERM);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD")
    return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS")
    return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP")
    return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_ERRNO")
    return SCMP_ACT_ERRNO(ret);
  if (name == "SCMP_ACT_TRACE")
    return SCMP_ACT_TRACE(ret);
  if (name == "SCMP_ACT_ALLOW")
    return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_LOG")
    return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY")
    return SCMP_ACT_NOTIFY;
  return failf("unknown action {:?}", name);
}

Result<uint32_t> seccomp_arch(const std::string &name) {
  constexpr std::string_view prefix = "SCMP_ARCH_";
  if (name.rfind(prefix, 0) != 0)
    return failf("unknown architecture {:?}", name);
  std::string lower = lower_without_prefix(name, prefix);
  uint32_t arch = seccomp_arch_resolve_name(lower.c_str());
  if (arch == 0)
    return failf("unknown architecture {:?}", name);
  return arch;
}

Result<unsigned int> seccomp_flag(const std::string &name) {
  if (name == "SECCOMP_FILTER_FLAG_TSYNC")
    return SECCOMP_FILTER_FLAG_TSYNC;
  if (name == "SECCOMP_FILTER_FLAG_LOG")
    return SECCOMP_FILTER_FLAG_LOG;
  if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
    return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  if (name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
    return SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  return failf("unknown flag {:?}", name);
}

Result<SeccompPlan> compile_seccomp(const oci::Seccomp &s, const WarnFn &warn) {
  SeccompPlan plan;
  if (s.default_action == "SCMP_ACT_NOTIFY")
    return fail("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  if (s.default_action.empty())
    return fail("linux.seccomp.defaultAction: is required");
  uint32_t def =
      BH_TRY(context(seccomp_action(s.default_action, s.default_errno_ret), "linux.seccomp.defaultAction"));

  for (size_t i = 0; i < s.flags.size(); ++i)
    plan.flags |= BH_TRY(context(seccomp_flag(s.flags[i]), fmt::format("linux.seccomp.flags[{}]", i)));

  ScmpCtx c;
  c.ctx = seccomp_init(def);
  if (!c.ctx)
    return fail("linux.seccomp: seccomp_init failed (bad defaultAction?)");
  // We load the program ourselves; these only keep libseccomp from second-guessing it.
  seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (size_t i = 0; i < s.architectures.size(); ++i) {
    uint32_t arch =
        BH_TRY(context(seccomp_arch(s.architectures[i]), fmt::format("linux.seccomp.architectures[{}]", i)));
    int rc = seccomp_arch_add(c.ctx, arch);
    if (rc == -EDOM)
      return failf("linux.seccomp.architectures[{}]: {} has a different byte order than this host; one "
                   "filter cannot cover both",
                   i, s.architectures[i]);
    if (rc < 0 && rc != -EEXIST)
      return fail(fmt::format("linux.seccomp.architectures[{}]: {}", i, s.architectures[i]), -rc);
  }

  std::vector<std::string> unknown;
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const auto &rule = s.syscalls[i];
    auto where = fmt::format("linux.seccomp.syscalls[{}]", i);
    if (rule.names.empty())
      return failf("{}.names: must list at least one syscall", where);
    uint32_t action = BH_TRY(context(seccomp_action(rule.action, rule.errno_ret), where + ".action"));
    if (rule.action == "SCMP_ACT_NOTIFY") {
      if (s.listener_path.empty())
        return failf("{}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath", where);
      // The runtime sends the notify fd with sendmsg from under the new filter, before any agent
      // holds it: a notified sendmsg could never be answered. close (of the runtime's own fds
      // after the send) is fine: the agent already has the fd and answers it like any other.
      for (const auto &n : rule.names)
        if (n == "sendmsg")
          return failf("{}: SCMP_ACT_NOTIFY on {} would block the runtime sending the notify fd", where, n);
      plan.notify = true;
    }
    std::vector<scmp_arg_cmp> conds;
    bool repeated_index = false;
    uint32_t seen = 0;
    for (size_t j = 0; j < rule.args.size(); ++j) {
      const auto &a = rule.args[j];
      if (a.index > 5)
        return failf("{}.args[{}].index: {} is out of range (0-5)", where, j, a.index);
      scmp_compare op = BH_TRY(context(compare_op(a.op), fmt::format("{}.args[{}].op", where, j)));
      if (seen & (1u << a.index))
        repeated_index = true;
      seen |= 1u << a.index;
      // Spelled out rather than SCMP_CMP(...), whose two-argument form leaves datum_b to the
      // zero-initialisation clang's -Wmissing-field-initializers reports.
      uint64_t datum_b = op == SCMP_CMP_MASKED_EQ ? a.value_two : 0;
      conds.push_back(scmp_arg_cmp{a.index, op, a.value, datum_b});
    }
    if (action == def)
      continue; // libseccomp refuses no-op rules; they change nothing
    for (const auto &name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        unknown.push_back(name);
        continue;
      }
      auto add = [&](const scmp_arg_cmp *cs, unsigned n) -> Status {
        int rc = seccomp_rule_add_array(c.ctx, action, nr, n, cs);
        if (rc < 0)
          return fail(fmt::format("{}: adding rule for {}", where, name), -rc);
        return {};
      };
      // libseccomp ANDs the conditions of one rule and allows one condition per argument;
      // several conditions on the same argument become alternatives (one rule each), like runc.
      if (repeated_index) {
        for (const auto &cond : conds)
          BH_CHECK(add(&cond, 1));
      } else {
        BH_CHECK(add(conds.data(), static_cast<unsigned>(conds.size())));
      }
    }
  }
  if (!unknown.empty() && warn) {
    std::string list;
    for (const auto &n : unknown)
      list += (list.empty() ? "" : ", ") + n;
    warn(
        fmt::format("linux.seccomp: skipping {} syscall(s) unknown to libseccomp: {}", unknown.size(), list));
  }
  if (plan.notify)
    plan.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  // TSYNC reports a failing thread id, which would collide with the listener fd return value.
  if (plan.notify && (plan.flags & SECCOMP_FILTER_FLAG_TSYNC))
    plan.flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  plan.listener_path = s.listener_path;
  plan.listener_metadata = s.listener_metadata;
  if (!s.listener_path.empty() && !plan.notify && warn)
    warn("linux.seccomp.listenerPath is set but no rule uses SCMP_ACT_NOTIFY; no listener is used");
  plan.bpf = BH_TRY(export_bpf(c.ctx));
  // A default that lets unknown syscalls through (allow, log) needs no ENOSYS for newer ones.
  if (def != SCMP_ACT_ALLOW && def != SCMP_ACT_LOG)
    plan.bpf = with_enosys_stub(named_syscall_limits(c.ctx, s), plan.bpf);
  if (plan.bpf.size() > BPF_MAXINSNS)
    return failf("seccomp: the filter has {} instructions, the kernel accepts at most {}", plan.bpf.size(),
                 BPF_MAXINSNS);
  return plan;
}

} // namespace bulkhead::security
