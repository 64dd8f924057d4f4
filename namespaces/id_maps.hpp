// User-namespace id maps, written by the parent into the child's /proc/PID/{uid,gid}_map.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::ns {

// "0 100000 65536\n..." as the kernel expects it.
std::string format_id_map(const std::vector<oci::IdMapping> &maps);

// Root writes the maps directly (any number of ranges). Anyone else goes through the setuid
// helpers newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
Status write_id_maps(pid_t pid, const std::vector<oci::IdMapping> &uid_maps,
                     const std::vector<oci::IdMapping> &gid_maps);

} // namespace bulkhead::ns
