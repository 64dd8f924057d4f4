// `update --resources FILE`: LinuxResources, converted to cgroup v2 writes and the device filter
// exactly as update would, without touching a cgroup.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cgroups/convert.hpp"
#include "cgroups/device_filter.hpp"
#include "cgroups/resources.hpp"
#include "oci/parse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace bulkhead;
  auto r = oci::parse_resources(std::string_view(reinterpret_cast<const char *>(data), size));
  if (!r)
    return 0;
  (void)cgroups::requests_controllers(*r);
  for (bool bfq : {false, true})
    (void)cgroups::convert_resources(*r, cgroups::HostFeatures{bfq, bfq});
  (void)cgroups::device_rule_warnings(r->devices);
  (void)cgroups::device_filter_program(cgroups::effective_device_rules(r->devices));
  return 0;
}
