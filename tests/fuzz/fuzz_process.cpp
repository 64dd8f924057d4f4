// `exec --process FILE`: the process object, then what exec does with it before it clones (the
// container's spec with this process, validated; capabilities, rlimits, scheduler resolved).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "oci/default_spec.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"
#include "security/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace bulkhead;
  auto process = oci::parse_process(std::string_view(reinterpret_cast<const char *>(data), size));
  if (!process)
    return 0;
  static const oci::Spec base = *oci::parse_spec(oci::default_spec_json(false));
  oci::Spec spec = base;
  spec.process = *process;
  if (!oci::validate_spec(spec))
    return 0;
  (void)security::prepare_security(spec, [](const std::string &) {});
  return 0;
}
