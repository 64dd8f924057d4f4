// The config.json `bulkhead spec` writes: the same shape and defaults as `runc spec`.
#pragma once

#include <string>

namespace bulkhead::oci {

std::string default_spec_json(bool rootless);

} // namespace bulkhead::oci
