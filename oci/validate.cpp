#include "oci/validate.hpp"

#include <set>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace bulkhead::oci {

namespace {

bool absolute(const std::string &path) { return !path.empty() && path.front() == '/'; }

Status check_process(const Process &p) {
  if (p.args.empty())
    return fail("process.args: must be a non-empty array");
  if (!absolute(p.cwd))
    return fail("process.cwd: must be an absolute path");
  std::set<std::string> seen;
  for (size_t i = 0; i < p.rlimits.size(); ++i) {
    const Rlimit &r = p.rlimits[i];
    if (!rlimit_resource(r.type))
      return failf("process.rlimits[{}].type: unknown rlimit {:?}", i, r.type);
    if (!seen.insert(r.type).second)
      return failf("process.rlimits[{}].type: duplicate rlimit {:?}", i, r.type);
    if (r.soft > r.hard)
      return failf("process.rlimits[{}].soft: must not exceed hard ({} > {})", i, r.soft, r.hard);
  }
  return {};
}

Status check_mounts(const std::vector<Mount> &mounts) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Mount &m = mounts[i];
    if (!absolute(m.destination))
      return failf("mounts[{}].destination: must be an absolute path", i);
    if (m.uid_mappings.empty() != m.gid_mappings.empty())
      return failf("mounts[{}]: uidMappings and gidMappings must be set together", i);
  }
  return {};
}

Status check_hooks(const Hooks &hooks) {
  const std::pair<const char *, const std::vector<Hook> *> lists[] = {
      {"prestart", &hooks.prestart},
      {"createRuntime", &hooks.create_runtime},
      {"createContainer", &hooks.create_container},
      {"startContainer", &hooks.start_container},
      {"poststart", &hooks.poststart},
      {"poststop", &hooks.poststop},
  };
  for (const auto &[name, list] : lists) {
    for (size_t i = 0; i < list->size(); ++i) {
      const Hook &h = (*list)[i];
      if (!absolute(h.path))
        return failf("hooks.{}[{}].path: must be an absolute path", name, i);
      if (h.timeout && *h.timeout <= 0)
        return failf("hooks.{}[{}].timeout: must be greater than zero", name, i);
    }
  }
  return {};
}

Status check_namespaces(const Linux &linux) {
  std::set<NamespaceType> seen;
  for (size_t i = 0; i < linux.namespaces.size(); ++i) {
    const Namespace &ns = linux.namespaces[i];
    if (!seen.insert(ns.type).second)
      return failf("linux.namespaces[{}].type: duplicate namespace {:?}", i,
                   std::string_view(namespace_type_name(ns.type)));
    if (!ns.path.empty() && !absolute(ns.path))
      return failf("linux.namespaces[{}].path: must be an absolute path", i);
  }
  return {};
}

Status check_uts(const Spec &spec, const Linux &linux) {
  // Like runc, a joined UTS namespace (one with a path) also counts: it is not the host's.
  bool has_uts = linux.has_namespace(NamespaceType::Uts);
  if (!spec.hostname.empty() && !has_uts)
    return fail("hostname: requires a new uts namespace");
  if (!spec.domainname.empty() && !has_uts)
    return fail("domainname: requires a new uts namespace");
  return {};
}

Status check_id_mappings(const Linux &linux) {
  bool has_user = linux.has_namespace(NamespaceType::User);
  if (!linux.uid_mappings.empty() && !has_user)
    return fail("linux.uidMappings: requires a user namespace");
  if (!linux.gid_mappings.empty() && !has_user)
    return fail("linux.gidMappings: requires a user namespace");
  return {};
}

Status check_time_offsets(const Linux &linux) {
  if (linux.time_offsets.empty())
    return {};
  const Namespace *time = linux.find_namespace(NamespaceType::Time);
  if (!time)
    return fail("linux.timeOffsets: requires a new time namespace");
  // Offsets are fixed when a time namespace is first entered, so a joined one cannot take them.
  if (!time->path.empty())
    return fail("linux.timeOffsets: cannot be set when joining an existing time namespace");
  for (const auto &[clock, offset] : linux.time_offsets)
    if (clock != "monotonic" && clock != "boottime")
      return failf(R"(linux.timeOffsets[{:?}]: unknown clock (must be "monotonic" or "boottime"))", clock);
  return {};
}

Status check_devices(const Linux &linux) {
  for (size_t i = 0; i < linux.devices.size(); ++i) {
    const Device &d = linux.devices[i];
    if (std::string_view("cbup").find(d.type) == std::string_view::npos)
      return failf(R"(linux.devices[{}].type: must be one of "c", "b", "u", "p")", i);
    if (!absolute(d.path))
      return failf("linux.devices[{}].path: must be an absolute path", i);
  }
  return {};
}

Status check_paths(const std::vector<std::string> &paths, std::string_view name) {
  for (size_t i = 0; i < paths.size(); ++i)
    if (!absolute(paths[i]))
      return failf("linux.{}[{}]: must be an absolute path", name, i);
  return {};
}

Status check_linux_misc(const Linux &linux) {
  for (const auto &[key, value] : linux.sysctl)
    if (key.empty())
      return fail("linux.sysctl: keys must be non-empty");
  static constexpr std::string_view kPropagations[] = {
      "", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"};
  bool known = false;
  for (auto p : kPropagations)
    known = known || p == linux.rootfs_propagation;
  if (!known)
    return failf("linux.rootfsPropagation: unknown propagation {:?} (must be one of shared, slave, private, "
                 "unbindable, rshared, rslave, rprivate, runbindable)",
                 linux.rootfs_propagation);
  BH_CHECK(check_paths(linux.masked_paths, "maskedPaths"));
  BH_CHECK(check_paths(linux.readonly_paths, "readonlyPaths"));
  return {};
}

bool id_char_allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '+' || c == '-';
}

} // namespace

Status validate_spec(const Spec &spec) {
  if (spec.oci_version.empty())
    return fail("ociVersion: is required");
  if (spec.root.path.empty())
    return fail("root.path: must be a non-empty string");
  if (!spec.process)
    return fail("process: is required");
  BH_CHECK(check_process(*spec.process));
  BH_CHECK(check_mounts(spec.mounts));
  BH_CHECK(check_hooks(spec.hooks));

  // An absent linux object means "no namespaces", which the UTS rule still has to see.
  static const Linux kNoLinux;
  const Linux &linux = spec.linux ? *spec.linux : kNoLinux;
  BH_CHECK(check_namespaces(linux));
  BH_CHECK(check_uts(spec, linux));
  BH_CHECK(check_id_mappings(linux));
  BH_CHECK(check_time_offsets(linux));
  BH_CHECK(check_devices(linux));
  BH_CHECK(check_linux_misc(linux));
  return {};
}

Status validate_container_id(const std::string &id) {
  if (id.empty())
    return fail("invalid container id: must not be empty");
  if (id.size() > 1024)
    return fail("invalid container id: longer than 1024 bytes");
  // Both would resolve to a directory other than the container's own under the state root.
  if (id == "." || id == "..")
    return failf("invalid container id {:?}: reserved name", id);
  for (char c : id)
    if (!id_char_allowed(c))
      return failf("invalid container id {:?}: contains {:?}", id, std::string(1, c));
  return {};
}

} // namespace bulkhead::oci
