#include "storage/template_store.hpp"

namespace bulkhead::storage {

Status validate_name(const std::string &kind, const std::string &name) {
  // Names become directory names and overlay mount options: the set has no '/', ',', ':' or '.'.
  bool ok = !name.empty() && name.size() <= 63;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
  }
  if (!ok)
    return fail(fmt::format("invalid {} name \"{}\": names are 1 to 63 of [a-z0-9-], not starting with '-'",
                            kind, name),
                EINVAL);
  return {};
}

} // namespace bulkhead::storage
