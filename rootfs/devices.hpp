// /dev inside the container: the default device nodes every OCI runtime provides, the config's
// linux.devices, and the standard symlinks.
#pragma once

#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::rootfs {

// null, zero, full, random, urandom, tty (0666, root-owned).
const std::vector<oci::Device> &default_devices();

// Creates device nodes with mknod, or, inside a user namespace where mknod is not allowed, binds the
// host's node of the same path over an empty file (as runc does).
Status create_devices(int root_fd, const std::vector<oci::Device> &devices, bool bind_from_host);

// /dev/fd, /dev/std{in,out,err} and /dev/ptmx -> pts/ptmx.
Status create_dev_symlinks(int root_fd);

} // namespace bulkhead::rootfs
