// The -ENOSYS stub runc and crun put in front of a seccomp filter. A profile written before a
// syscall existed does not name it, so its default action (usually EPERM) would answer it; libc
// falls back to an older syscall (clone3 -> clone, faccessat2 -> faccessat) only on ENOSYS. The
// stub answers ENOSYS for every syscall numbered above the highest one the profile names for the
// caller's architecture, and hands everything else to the libseccomp program unchanged.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace bulkhead::security {

struct ArchLimit {
  uint32_t audit_arch; // AUDIT_ARCH_* (libseccomp's SCMP_ARCH_* tokens are these values)
  uint32_t max_nr;     // the highest syscall number the profile names for it
};

// `program` with the stub in front. x86_64 syscalls with the x32 bit set go to `program` as they
// are (it decides about x32). An architecture missing from `limits` is not patched.
std::vector<sock_filter> with_enosys_stub(const std::vector<ArchLimit> &limits,
                                          const std::vector<sock_filter> &program);

} // namespace bulkhead::security
