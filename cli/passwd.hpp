// User names for `list`'s OWNER column, read from /etc/passwd itself (as runc's libcontainer/user
// does) rather than through getpwuid(3): NSS would dlopen libnss_* modules, which a statically
// linked bulkhead cannot do safely, and a local file is what runc shows as well.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace bulkhead::cli {

// The first name with this uid in passwd-format text ("name:pw:uid:gid:gecos:home:shell").
std::optional<std::string> user_name_in(std::string_view passwd, uid_t uid);

// user_name_in(contents of path), nullopt when the file cannot be read.
std::optional<std::string> user_name(uid_t uid, const std::string &path = "/etc/passwd");

} // namespace bulkhead::cli
