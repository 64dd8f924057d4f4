// The runtime-spec state object, serialised in the key order and shape runc prints.
#pragma once

#include <map>
#include <string>

namespace bulkhead::oci {

inline constexpr const char *kSpecVersion = "1.2.0";

struct State {
  std::string oci_version = kSpecVersion;
  std::string id;
  std::string status; // creating, created, running, paused, stopped
  int pid = 0;        // 0 is omitted, as runc does for stopped containers
  std::string bundle;
  std::string rootfs;
  std::string created; // RFC 3339 with nanoseconds, UTC
  std::string owner;
  std::map<std::string, std::string> annotations;
};

// Pretty (2-space indent) is what `state` prints; compact is what hooks get on stdin.
std::string state_to_json(const State &state, bool pretty);

} // namespace bulkhead::oci
