// OCI linux.seccomp -> classic BPF, compiled with libseccomp in the parent.
#pragma once

#include "bulkhead/result.hpp"
#include "security/plan.hpp"

namespace bulkhead::security {

Result<SeccompPlan> compile_seccomp(const oci::Seccomp &seccomp, const WarnFn &warn);

// The libseccomp this binary runs with, "2.5.4" (`--version` prints it, as runc does).
std::string libseccomp_version();

// Exposed for tests and error messages.
Result<uint32_t> seccomp_action(const std::string &name, const std::optional<uint32_t> &errno_ret);
Result<uint32_t> seccomp_arch(const std::string &name);
Result<unsigned int> seccomp_flag(const std::string &name);

} // namespace bulkhead::security
