// AppArmor and SELinux: presence checks (parent) and exec labels (child, through verified procfs).
#pragma once

#include <string>

namespace bulkhead::security {

bool apparmor_enabled();
bool selinux_enabled();

} // namespace bulkhead::security
