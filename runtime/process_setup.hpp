// Child-side process attributes, applied by init after pivot_root and before it reports Ready.
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::runtime {

Status apply_rlimits(const oci::Process &p);
// chdir to process.cwd and make sure the result is inside the container's root (a cwd reached
// through a leaked fd would be "unreachable").
Status enter_cwd(const std::string &cwd);
// Finds args[0] like execvp would, in the PATH of process.env; the error text matches runc's so
// podman and Docker classify it ("executable file not found in $PATH").
Result<std::string> find_executable(const oci::Process &p);
// Back to default signal dispositions and an empty mask, so the user process starts clean.
void reset_signals();

} // namespace bulkhead::runtime
