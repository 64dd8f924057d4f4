#include "oci/state.hpp"

#include <nlohmann/json.hpp>

namespace bulkhead::oci {

std::string state_to_json(const State &state, bool pretty) {
  nlohmann::ordered_json j;
  j["ociVersion"] = state.oci_version;
  j["id"] = state.id;
  j["pid"] = state.pid; // runc prints 0 for a stopped container
  j["status"] = state.status;
  j["bundle"] = state.bundle;
  j["rootfs"] = state.rootfs;
  j["created"] = state.created;
  if (!state.annotations.empty())
    j["annotations"] = state.annotations;
  j["owner"] = state.owner;
  // Paths and annotations are arbitrary bytes; printing must not throw on invalid UTF-8.
  constexpr auto on_bad_utf8 = nlohmann::ordered_json::error_handler_t::replace;
  return pretty ? j.dump(2, ' ', false, on_bad_utf8) : j.dump(-1, ' ', false, on_bad_utf8);
}

} // namespace bulkhead::oci
