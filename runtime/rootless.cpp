#include "runtime/rootless.hpp"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"

namespace bulkhead {

bool in_initial_user_namespace() {
  auto map = read_file("/proc/self/uid_map");
  if (!map)
    return true; // no /proc: nothing says otherwise
  unsigned long inside = 1, outside = 1, count = 0;
  // The host's namespace maps all 2^32-1 ids onto themselves, in one line.
  return std::sscanf(map->c_str(), "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 &&
         outside == 0 && count == 4294967295UL;
}

bool running_rootless() { return ::geteuid() != 0 || !in_initial_user_namespace(); }

std::string default_state_root() {
  const char *xdg = std::getenv("XDG_RUNTIME_DIR");
  bool has_xdg = xdg != nullptr && *xdg != '\0';
  if (::geteuid() != 0)
    return has_xdg ? std::string(xdg) + "/bulkhead" : fmt::format("/run/user/{}/bulkhead", ::geteuid());
  if (has_xdg && !in_initial_user_namespace()) {
    // `podman unshare` and rootless podman keep USER of the user who ran them; a root shell in a
    // user namespace (USER=root) keeps the host's directory.
    const char *user = std::getenv("USER");
    if (user == nullptr || std::string(user) != "root")
      return std::string(xdg) + "/bulkhead";
  }
  return "/run/bulkhead";
}

cgroups::SystemdManager systemd_manager(bool rootless) {
  return rootless ? cgroups::SystemdManager::User : cgroups::SystemdManager::System;
}

std::string systemd_driver_name(cgroups::SystemdManager manager) {
  return manager == cgroups::SystemdManager::User ? "systemd-user" : "systemd";
}

std::optional<cgroups::SystemdManager> systemd_manager_of(const std::string &driver_name) {
  if (driver_name == "systemd")
    return cgroups::SystemdManager::System;
  if (driver_name == "systemd-user")
    return cgroups::SystemdManager::User;
  return std::nullopt;
}

} // namespace bulkhead
