#include "lib/abi_common.hpp"

namespace bulkhead::abi {
namespace {
thread_local std::string last_error;
}

bulkhead_status set_error(bulkhead_status status, std::string message) {
  last_error = std::move(message);
  return status;
}

bulkhead_status give_string(const std::string &s, char **out) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p == nullptr)
    return set_error(BULKHEAD_E_NOMEM, "out of memory");
  std::memcpy(p, s.c_str(), s.size() + 1);
  *out = p;
  return BULKHEAD_OK;
}

std::string helper_path(const char *explicit_path, const char *env_name, const char *installed) {
  if (explicit_path != nullptr && *explicit_path != '\0')
    return explicit_path;
  // secure_getenv: a setuid caller does not take the helper's path from its environment.
  if (const char *env = secure_getenv(env_name); env != nullptr && *env != '\0')
    return env;
  return installed;
}

} // namespace bulkhead::abi

BH_API const char *bulkhead_last_error(void) { return bulkhead::abi::last_error.c_str(); }
BH_API int bulkhead_abi_version(void) { return BULKHEAD_ABI_VERSION; }
BH_API const char *bulkhead_version(void) { return BULKHEAD_VERSION; }
BH_API void bulkhead_free(void *p) { std::free(p); }
