// config.json as create reads it: parse, validate, then the pure steps create takes before it
// touches the host (mount options, cgroup v2 conversion, device filter program, seccomp compile).
// Any input may be rejected; none may crash, hang or trip a sanitizer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cgroups/convert.hpp"
#include "cgroups/device_filter.hpp"
#include "cgroups/resources.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"
#include "rootfs/mount_options.hpp"
#include "security/seccomp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace bulkhead;
  auto spec = oci::parse_spec(std::string_view(reinterpret_cast<const char *>(data), size));
  if (!spec)
    return 0;
  (void)spec->root.path.size();
  if (!oci::validate_spec(*spec))
    return 0;
  for (const auto &m : spec->mounts)
    (void)rootfs::parse_mount_options(m.options);
  if (!spec->linux)
    return 0;
  if (spec->linux->resources) {
    (void)cgroups::convert_resources(*spec->linux->resources);
    auto rules = cgroups::effective_device_rules(spec->linux->resources->devices);
    (void)cgroups::device_rule_warnings(spec->linux->resources->devices);
    (void)cgroups::device_filter_program(rules);
  }
  if (spec->linux->seccomp)
    (void)security::compile_seccomp(*spec->linux->seccomp, [](const std::string &) {});
  return 0;
}
