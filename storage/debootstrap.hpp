// Host apt configuration that debootstrap should reuse: the mirror and the HTTP proxy.
#pragma once

#include <string>

namespace bulkhead::storage {

// Packages debootstrap adds to the minbase of `template create --debootstrap` (its --include): an init
// to boot (systemd-sysv: /sbin/init -> systemd) and dbus. tests/daemon/run-vm-systemd.sh uses the same.
inline constexpr const char *kDebootstrapInclude = "systemd-sysv,dbus";

// The first http(s) URI of the host's apt sources: "URIs:" of the deb822 files in sources_d (debian.sources
// first), else the first "deb" line of `list`. Empty if none.
std::string default_mirror(const std::string &sources_d = "/etc/apt/sources.list.d",
                           const std::string &list = "/etc/apt/sources.list");

// The value of Acquire::http::Proxy in the apt configuration directory, empty if none.
std::string apt_http_proxy(const std::string &conf_d = "/etc/apt/apt.conf.d");

} // namespace bulkhead::storage
