// The OCI spec of a system container. Choices that differ from `bulkhead spec` (an application
// container) and why:
// - Capabilities: every capability except the five LXC drops by default (sys_module, sys_time,
//   sys_rawio, mac_admin, mac_override). An OS init mounts filesystems, sets up its network
//   namespace, changes resource limits and owners, reboots/powers off (CAP_SYS_BOOT makes
//   reboot(2) in a pid namespace end the namespace's init instead of the host) and runs services
//   as other users; the five dropped ones reach outside the container (kernel modules, the host
//   clock, raw I/O ports and memory, the host's LSM policy).
// - Seccomp: not the Docker profile (an allow list that keys mount, setns, unshare, ... on
//   CAP_SYS_ADMIN and refuses keyctl) but a deny list of what stays host-wide even inside every
//   namespace (see seccomp()). systemd needs mount, unshare, clone with namespace flags,
//   name_to_handle_at, ...
// - noNewPrivileges false: setuid binaries (su, sudo, ping) must work in a full OS.
// - /sys read-only (systemd detects the container and skips what it cannot do there), cgroup2
//   read-write in a private cgroup namespace: the container's init manages its own subtree
//   (systemd creates init.scope, system.slice, ...).
#include "daemon/spec_builder.hpp"

#include <sys/stat.h>

#include <cmath>

#include "oci/state.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

json mount(const std::string &destination, const std::string &type, const std::string &source,
           std::vector<std::string> options) {
  return json{{"destination", destination}, {"type", type}, {"source", source}, {"options", options}};
}

// Every capability up to CAP_CHECKPOINT_RESTORE (40). Names newer than the running kernel are
// skipped by the runtime with a warning.
std::vector<std::string> system_capabilities() {
  static const char *const all[] = {"CAP_CHOWN",
                                    "CAP_DAC_OVERRIDE",
                                    "CAP_DAC_READ_SEARCH",
                                    "CAP_FOWNER",
                                    "CAP_FSETID",
                                    "CAP_KILL",
                                    "CAP_SETGID",
                                    "CAP_SETUID",
                                    "CAP_SETPCAP",
                                    "CAP_LINUX_IMMUTABLE",
                                    "CAP_NET_BIND_SERVICE",
                                    "CAP_NET_BROADCAST",
                                    "CAP_NET_ADMIN",
                                    "CAP_NET_RAW",
                                    "CAP_IPC_LOCK",
                                    "CAP_IPC_OWNER",
                                    "CAP_SYS_MODULE",
                                    "CAP_SYS_RAWIO",
                                    "CAP_SYS_CHROOT",
                                    "CAP_SYS_PTRACE",
                                    "CAP_SYS_PACCT",
                                    "CAP_SYS_ADMIN",
                                    "CAP_SYS_BOOT",
                                    "CAP_SYS_NICE",
                                    "CAP_SYS_RESOURCE",
                                    "CAP_SYS_TIME",
                                    "CAP_SYS_TTY_CONFIG",
                                    "CAP_MKNOD",
                                    "CAP_LEASE",
                                    "CAP_AUDIT_WRITE",
                                    "CAP_AUDIT_CONTROL",
                                    "CAP_SETFCAP",
                                    "CAP_MAC_OVERRIDE",
                                    "CAP_MAC_ADMIN",
                                    "CAP_SYSLOG",
                                    "CAP_WAKE_ALARM",
                                    "CAP_BLOCK_SUSPEND",
                                    "CAP_AUDIT_READ",
                                    "CAP_PERFMON",
                                    "CAP_BPF",
                                    "CAP_CHECKPOINT_RESTORE"};
  static const std::string dropped[] = {"CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_RAWIO", "CAP_MAC_ADMIN",
                                        "CAP_MAC_OVERRIDE"};
  std::vector<std::string> caps;
  for (const char *c : all)
    if (std::find(std::begin(dropped), std::end(dropped), c) == std::end(dropped))
      caps.emplace_back(c);
  return caps;
}

json errno_rule(std::vector<std::string> names, int err) {
  return json{{"names", std::move(names)}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", err}};
}

// Deny list in the spirit of LXC's default: allow everything a privileged init may do, refuse what
// no namespace confines.
json seccomp() {
  json rules = json::array();
  // Kernel replacement and modules (CAP_SYS_MODULE is dropped too; this also covers kexec).
  rules.push_back(
      errno_rule({"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module"}, EPERM));
  // open_by_handle_at opens host files by handle, past any mount namespace ("shocker").
  rules.push_back(errno_rule({"open_by_handle_at"}, EPERM));
  // Raw I/O ports and the host's swap.
  rules.push_back(errno_rule({"iopl", "ioperm", "swapon", "swapoff"}, EPERM));
  // BPF programs and perf events can read any kernel memory; systemd falls back without them
  // (no BPF device/IP policies for its own units).
  rules.push_back(errno_rule({"bpf", "perf_event_open"}, EPERM));
  // The kernel keyring is not namespaced: ENOSYS makes systemd and libkeyutils treat keyrings as
  // absent instead of failing.
  rules.push_back(errno_rule({"keyctl", "add_key", "request_key"}, ENOSYS));
  json s;
  s["defaultAction"] = "SCMP_ACT_ALLOW";
#if defined(__x86_64__)
  s["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  s["architectures"] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#endif
  s["syscalls"] = std::move(rules);
  return s;
}

void set_env(std::vector<std::string> &env, const std::string &kv) {
  auto key = kv.substr(0, kv.find('=') + 1);
  for (auto &e : env)
    if (e.rfind(key, 0) == 0) {
      e = kv;
      return;
    }
  env.push_back(kv);
}

json process(const ContainerConfig &config, const SpecContext &ctx) {
  std::vector<std::string> env = {"container=bulkhead",
                                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "TERM=linux"};
  for (const auto &kv : config.env)
    set_env(env, kv);
  auto caps = system_capabilities();
  json p;
  p["terminal"] = true;
  p["user"] = json{{"uid", 0}, {"gid", 0}};
  p["args"] = config.init.empty() ? std::vector<std::string>{ctx.init_path} : config.init;
  p["env"] = env;
  p["cwd"] = "/";
  p["capabilities"] = json{{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  // No rlimits: init inherits the daemon's (as with LXC), and an OS init sets its services' own.
  p["noNewPrivileges"] = false;
  return p;
}

bool exists(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

json mounts(const SpecContext &ctx) {
  json list = json::array();
  list.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  list.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  list.push_back(mount("/dev/pts", "devpts", "devpts",
                       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  // /dev/shm and /run are charged to the container's memory cgroup, so memory.max bounds them.
  list.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "nodev", "mode=1777"}));
  list.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  list.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  list.push_back(
      mount("/sys/fs/cgroup", "cgroup2", "cgroup2", {"nosuid", "noexec", "nodev", "relatime", "rw"}));
  // No more tmpfs than these: each one's files are copied whole during the freeze of every
  // checkpoint, live migration and replication round (runtime/checkpoint_tmpfs.hpp) and again at
  // the restore, while files on the disk are synced before the freeze. So /tmp is the rootfs's directory, on
  // the container's disk and quota (Debian 12, Incus and OpenVZ do the same), and /run/lock a directory the
  // OS's init makes in /run (systemd-tmpfiles does).
  list.push_back(mount("/run", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=755"}));
  if (!ctx.lxcfs_dir.empty()) {
    // lxcfs renders these from the reader's cgroup: free, top and uptime see the container's
    // limits and start time. runc allows binds onto exactly such /proc files.
    for (const char *f : {"cpuinfo", "diskstats", "loadavg", "meminfo", "stat", "swaps", "uptime"}) {
      std::string source = ctx.lxcfs_dir + "/proc/" + f;
      if (exists(source))
        list.push_back(
            mount(std::string("/proc/") + f, "bind", source, {"bind", "nosuid", "nodev", "noexec"}));
    }
    std::string online = ctx.lxcfs_dir + "/sys/devices/system/cpu/online";
    if (exists(online))
      list.push_back(
          mount("/sys/devices/system/cpu/online", "bind", online, {"bind", "nosuid", "nodev", "noexec"}));
  }
  return list;
}

json resources(const Limits &limits) {
  json r;
  // Deny every device; the runtime then allows the nodes it creates (null, zero, full, random,
  // urandom, tty, ptmx, pts/*, net/tun), as for every container.
  r["devices"] = json::array({json{{"allow", false}, {"access", "rwm"}}});
  if (limits.memory_bytes)
    r["memory"] = json{{"limit", *limits.memory_bytes}};
  if (limits.cpus) {
    constexpr int64_t period = 100000;
    r["cpu"] = json{{"quota", static_cast<int64_t>(std::llround(*limits.cpus * period))}, {"period", period}};
  }
  if (limits.pids)
    r["pids"] = json{{"limit", *limits.pids}};
  return r;
}

json linux_section(const ContainerConfig &config, const SpecContext &ctx) {
  json l;
  json ns = json::array();
  for (const char *t : {"pid", "mount", "ipc", "uts", "cgroup", "network"})
    ns.push_back(json{{"type", t}});
  if (config.idmap) {
    // Unprivileged (docs/unprivileged.md): its own user namespace, every other namespace owned by
    // it, ids 0..65535 inside being its range outside.
    ns.push_back(json{{"type", "user"}});
    json uid =
        json::array({json{{"containerID", 0}, {"hostID", config.idmap->uid}, {"size", config.idmap->size}}});
    json gid =
        json::array({json{{"containerID", 0}, {"hostID", config.idmap->gid}, {"size", config.idmap->size}}});
    l["uidMappings"] = std::move(uid);
    l["gidMappings"] = std::move(gid);
  }
  l["namespaces"] = std::move(ns);
  l["cgroupsPath"] = ctx.cgroups_path;
  l["resources"] = resources(config.limits);
  // The OCI defaults; none of them covers the lxcfs files or /sys/fs/cgroup.
  l["maskedPaths"] = {"/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
                      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                      "/sys/firmware",       "/proc/scsi"};
  l["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  l["seccomp"] = seccomp();
  return l;
}

} // namespace

nlohmann::json build_system_spec(const ContainerConfig &config, const SpecContext &ctx) {
  json spec;
  spec["ociVersion"] = oci::kSpecVersion;
  spec["process"] = process(config, ctx);
  spec["root"] = json{{"path", ctx.rootfs}, {"readonly", false}};
  spec["hostname"] = config.hostname.empty() ? config.name : config.hostname;
  spec["mounts"] = mounts(ctx);
  spec["linux"] = linux_section(config, ctx);
  return spec;
}

} // namespace bulkhead::daemon
