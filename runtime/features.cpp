// `bulkhead features`: what this build supports, in the runtime-spec features.md shape. Every list
// is derived from the tables the code itself uses, so it cannot drift from the implementation.
#include <nlohmann/json.hpp>

#include "bulkhead/runtime.hpp"
#include "migration/criu.hpp"
#include "oci/state.hpp"
#include "rootfs/mount_options.hpp"
#include "security/capabilities.hpp"
#include "security/lsm.hpp"
#include "security/seccomp.hpp"

namespace bulkhead {

std::string features_json() {
  using json = nlohmann::ordered_json;
  json caps = json::array();
  for (int c = 0; c <= security::last_capability(); ++c)
    caps.push_back(security::capability_name(c));

  json actions = json::array(), archs = json::array(), flags = json::array();
  for (const char *a :
       {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})
    if (security::seccomp_action(a, std::nullopt))
      actions.push_back(a);
  for (const char *a :
       {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390", "SCMP_ARCH_S390X"})
    if (security::seccomp_arch(a))
      archs.push_back(a);
  for (const char *f : {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})
    if (security::seccomp_flag(f))
      flags.push_back(f);

  json j;
  j["ociVersionMin"] = "1.0.0";
  j["ociVersionMax"] = oci::kSpecVersion;
  j["hooks"] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
  j["mountOptions"] = rootfs::known_mount_options();
  j["linux"] = {
      {"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
      {"capabilities", caps},
      {"cgroup", {{"v1", false}, {"v2", true}, {"systemd", true}, {"systemdUser", true}, {"rdma", true}}},
      {"seccomp",
       {{"enabled", true},
        {"actions", actions},
        {"operators",
         {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
          "SCMP_CMP_MASKED_EQ"}},
        {"archs", archs},
        {"knownFlags", flags},
        {"supportedFlags", flags}}},
      {"apparmor", {{"enabled", security::apparmor_enabled()}}},
      {"selinux", {{"enabled", security::selinux_enabled()}}},
      {"intelRdt", {{"enabled", false}}},
      {"mountExtensions", {{"idmap", {{"enabled", true}}}}},
  };
  // Checkpoint/restore is what this host's CRIU can do now (it is started and asked), under runc's
  // annotation key, with the details in "checkpoint".
  auto criu = migration::probe();
  bool cr = criu.version > 0 && criu.error.empty();
  j["annotations"] = {{"org.opencontainers.runtime-spec.features", "bulkhead"},
                      {"org.opencontainers.runc.checkpoint.enabled", cr ? "true" : "false"}};
  json checkpoint = {{"enabled", cr},
                     {"criu", criu.binary},
                     {"criuVersion", criu.version},
                     {"preDump", cr && criu.mem_track},
                     {"lazyPages", criu.lazy_pages}};
  if (!criu.error.empty())
    checkpoint["error"] = criu.error;
  j["checkpoint"] = checkpoint;
  return j.dump(4);
}

} // namespace bulkhead
