// Semantic validation of a parsed Spec. The first violation is returned as "<json.path>: <rule>".
#pragma once

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::oci {

Status validate_spec(const Spec &spec);

// Container IDs: non-empty, <= 1024 bytes, [A-Za-z0-9_.+-] only, not "." or "..".
Status validate_container_id(const std::string &id);

} // namespace bulkhead::oci
