// The default capability set and seccomp profile (containerd's/Docker's rules, written from their
// documentation): used by `bulkhead spec` and by hosts that want Docker-equivalent confinement.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bulkhead::security {

// CAP_CHOWN, CAP_DAC_OVERRIDE, ... (14 names).
const std::vector<std::string> &default_capabilities();

// linux.seccomp for a process whose bounding set is `caps`: syscalls gated on a capability are
// allowed only when it is present. Architectures follow the build's native architecture.
nlohmann::ordered_json default_seccomp_profile(const std::vector<std::string> &caps);

} // namespace bulkhead::security
