// Child-side settings that live inside namespaces: hostname/domainname (uts), sysctls (ipc, net,
// uts, fs.mqueue), time offsets (time).
#pragma once

#include <map>
#include <string>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::ns {

Status set_hostname(const std::string &hostname, const std::string &domainname);

// Writes each key under /proc/sys of a verified procfs (proc_fd must be a procfs root fd).
// Keys use dots or slashes ("net.ipv4.ip_forward"); a key that tries to leave /proc/sys fails.
Status apply_sysctls(int proc_fd, const std::map<std::string, std::string> &sysctl);

// After unshare(CLONE_NEWTIME) and before the first process enters it (our execve).
Status write_time_offsets(const std::map<std::string, oci::TimeOffset> &offsets);

} // namespace bulkhead::ns
