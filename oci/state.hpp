// The runtime-spec state object, serialised in the key order and shape runc 1.1 prints
// (annotations before owner, pid 0 when stopped).
#pragma once

#include <map>
#include <string>

namespace bulkhead::oci {

inline constexpr const char *kSpecVersion = "1.2.0";

struct State {
  std::string oci_version = kSpecVersion;
  std::string id;
  std::string status; // creating, created, running, paused, stopped
  int pid = 0;        // 0 once stopped, printed as runc does
  std::string bundle;
  std::string rootfs;
  std::string created; // RFC 3339 with nanoseconds, UTC
  std::string owner;
  std::map<std::string, std::string> annotations;
};

// Pretty (2-space indent) is what `state` prints; compact is what hooks get on stdin.
std::string state_to_json(const State &state, bool pretty);

} // namespace bulkhead::oci
