#include "oci/default_spec.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "oci/state.hpp"
#include "security/default_profile.hpp"

namespace bulkhead::oci {

namespace {

using ojson = nlohmann::ordered_json;

ojson mount(const char *destination, const char *type, const char *source, ojson options = nullptr) {
  ojson m;
  m["destination"] = destination;
  m["type"] = type;
  m["source"] = source;
  if (!options.is_null())
    m["options"] = std::move(options);
  return m;
}

ojson id_mapping(unsigned host_id) {
  ojson m;
  m["containerID"] = 0;
  m["hostID"] = host_id;
  m["size"] = 1;
  return ojson::array({m});
}

ojson namespaces(std::initializer_list<const char *> types) {
  ojson list = ojson::array();
  for (const char *t : types)
    list.push_back(ojson{{"type", t}});
  return list;
}

ojson process() {
  ojson p;
  p["terminal"] = true;
  p["user"] = ojson{{"uid", 0}, {"gid", 0}};
  p["args"] = ojson::array({"sh"});
  p["env"] =
      ojson::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"});
  p["cwd"] = "/";
  // containerd's/Docker's default set; inheritable and ambient stay empty (CVE-2022-29162).
  const ojson caps = security::default_capabilities();
  p["capabilities"] = ojson{{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  ojson nofile;
  nofile["type"] = "RLIMIT_NOFILE";
  nofile["hard"] = 1024;
  nofile["soft"] = 1024;
  p["rlimits"] = ojson::array({nofile});
  p["noNewPrivileges"] = true;
  return p;
}

ojson mounts(bool rootless) {
  ojson devpts_options = ojson::array({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"});
  // Without a mapped gid 5 in the user namespace, devpts would refuse the gid= option.
  if (!rootless)
    devpts_options.push_back("gid=5");
  ojson list = ojson::array();
  list.push_back(mount("/proc", "proc", "proc"));
  list.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  list.push_back(mount("/dev/pts", "devpts", "devpts", std::move(devpts_options)));
  list.push_back(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  list.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  // A user namespace that does not own the network namespace may not mount a fresh sysfs.
  if (rootless)
    list.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  else
    list.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  list.push_back(
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  return list;
}

ojson linux_section(bool rootless) {
  ojson l;
  if (rootless) {
    l["uidMappings"] = id_mapping(::geteuid());
    l["gidMappings"] = id_mapping(::getegid());
    l["namespaces"] = namespaces({"pid", "ipc", "uts", "mount", "user"});
  } else {
    ojson deny_all;
    deny_all["allow"] = false;
    deny_all["access"] = "rwm";
    l["resources"] = ojson{{"devices", ojson::array({deny_all})}};
    l["namespaces"] = namespaces({"pid", "network", "ipc", "uts", "mount"});
  }
  l["maskedPaths"] = ojson::array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                   "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
  l["readonlyPaths"] =
      ojson::array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
  l["seccomp"] = security::default_seccomp_profile(security::default_capabilities());
  return l;
}

} // namespace

std::string default_spec_json(bool rootless) {
  ojson spec;
  spec["ociVersion"] = kSpecVersion;
  spec["process"] = process();
  spec["root"] = ojson{{"path", "rootfs"}, {"readonly", true}};
  spec["hostname"] = "runc";
  spec["mounts"] = mounts(rootless);
  spec["linux"] = linux_section(rootless);
  // runc writes Go's MarshalIndent(spec, "", "\t") output with no trailing newline.
  return spec.dump(1, '\t');
}

} // namespace bulkhead::oci
