// Which init a template boots and how it wants to be stopped, read from its rootfs.
#pragma once

#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

struct InitInfo {
  std::string init = "/sbin/init";
  std::string stop_signal = "SIGPWR";
  bool present = false; // /sbin/init resolves to a file
  std::string resolved; // where /sbin/init leads, inside the rootfs ("/lib/systemd/systemd")
};

// Resolves /sbin/init with the rootfs as "/" (symlinks in every component, ".." clamped at the
// root): systemd wants SIGRTMIN+3, busybox init (a link to busybox, or the binary itself) SIGUSR2,
// anything else (sysvinit, openrc's init) SIGPWR.
InitInfo detect_init(int rootfs_fd);

// Resolves `path` inside the rootfs as the kernel would with that rootfs as "/", without opening it.
// Returns the final absolute path and whether it exists.
std::pair<std::string, bool> resolve_inside(int rootfs_fd, const std::string &path);

} // namespace bulkhead::storage
