// Requests on the monitor's control socket as JSON (protocol table in daemon/monitor.cpp), shared
// by the monitor and its client.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "daemon/monitor_client.hpp"

namespace bulkhead::daemon {

// {"op":"exec", args, env, user, cwd, tty, rows, cols}: strict, unknown keys are errors.
Result<ExecRequest> exec_request_from_json(const nlohmann::json &j);
nlohmann::json exec_request_to_json(const ExecRequest &r);

} // namespace bulkhead::daemon
