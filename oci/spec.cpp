#include "oci/spec.hpp"

#include <sys/resource.h>

#include <array>
#include <utility>

namespace bulkhead::oci {

namespace {

constexpr std::array<std::pair<NamespaceType, const char *>, 8> kNamespaceNames{{
    {NamespaceType::Pid, "pid"},
    {NamespaceType::Network, "network"},
    {NamespaceType::Mount, "mount"},
    {NamespaceType::Ipc, "ipc"},
    {NamespaceType::Uts, "uts"},
    {NamespaceType::User, "user"},
    {NamespaceType::Cgroup, "cgroup"},
    {NamespaceType::Time, "time"},
}};

constexpr std::array<std::pair<std::string_view, int>, 16> kRlimits{{
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
}};

} // namespace

const char *namespace_type_name(NamespaceType t) {
  for (const auto &[type, name] : kNamespaceNames)
    if (type == t)
      return name;
  return "unknown";
}

std::optional<NamespaceType> namespace_type_from_name(std::string_view name) {
  for (const auto &[type, n] : kNamespaceNames)
    if (name == n)
      return type;
  return std::nullopt;
}

std::optional<int> rlimit_resource(std::string_view type) {
  for (const auto &[name, resource] : kRlimits)
    if (name == type)
      return resource;
  return std::nullopt;
}

} // namespace bulkhead::oci
