// config.json -> Spec. Exceptions from the JSON library stop here: callers get Result values whose
// message names the JSON path ("linux.namespaces[2].type: ...").
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::oci {

// Parses and type-checks; semantic rules live in validate.hpp.
Result<Spec> parse_spec(std::string_view json);
// Reads <bundle>/config.json; errors are prefixed with that path ("/x/config.json: malformed JSON: ...").
Result<Spec> load_bundle_spec(const std::string &bundle);
// A process object alone (exec --process FILE).
Result<Process> parse_process(std::string_view json);
// A LinuxResources object alone (update --resources FILE).
Result<Resources> parse_resources(std::string_view json);

// Hooks are persisted in the state directory so start/delete run exactly what create saw.
nlohmann::json hooks_to_json(const Hooks &hooks);
Result<Hooks> hooks_from_json(const nlohmann::json &j);

} // namespace bulkhead::oci
