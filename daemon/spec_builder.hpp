// Builds the OCI runtime spec (config.json) of a system container: the template's own init as
// pid 1 with what a full OS userland expects (see docs/daemon.md, "System containers").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/container_config.hpp"

namespace bulkhead::daemon {

struct SpecContext {
  std::string rootfs;          // absolute path of the mounted overlay (bundle/rootfs)
  std::string cgroups_path;    // e.g. "/bulkhead/NAME" (under the daemon's --cgroup-parent)
  std::string init_path;       // the template's init when config.init is empty
  std::string lxcfs_dir;       // mounted lxcfs (e.g. /var/lib/lxcfs); empty: no lxcfs binds
};

// The spec's process has terminal=true (the console pty), env container=bulkhead, and the
// config's env on top. Limits map to linux.resources (memory.max, cpu.max, pids.max).
nlohmann::json build_system_spec(const ContainerConfig &config, const SpecContext &ctx);

} // namespace bulkhead::daemon
