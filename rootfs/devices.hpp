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

// Called in the container's root (after pivot_root/chroot): stdio fds that are a /dev/null (the
// host's, as engines such as conmon hand a detached container without stdin) are replaced by the
// container's own /dev/null, opened read-write, as runc does. A file of the host's mount namespace
// is one CRIU cannot dump ("Can't lookup mount=N for fd=0 path=/dev/null"). Nothing is done when
// the container has no /dev/null device. Returns an error when the container's /dev/null cannot
// be opened or dup'ed over a stdio fd.
Status reopen_stdio_dev_null();

} // namespace bulkhead::rootfs
