// exec and console: they reach the container's monitor directly (daemon/monitor_client.hpp), as
// the HTTP API cannot carry their streams; the API only says where the monitor's socket is.
#pragma once

#include <string>

#include "cli/ctl.hpp"
#include "daemon/monitor_client.hpp"

namespace bulkhead::ctl {

// The exit status of the command (128+N when killed by signal N), or 1 with the error reported.
int run_exec(Context &ctx, const std::string &name, daemon::ExecRequest request);
int run_console(Context &ctx, const std::string &name);

// The console's detach sequence, Ctrl-] then q. Feeds keyboard bytes through it: returns the
// bytes to send on, and sets detach when the sequence is complete. A Ctrl-] followed by anything
// else sends both; Ctrl-] twice sends one.
class DetachFilter {
public:
  std::string feed(const char *data, size_t len, bool &detach);

private:
  bool escape_ = false;
};

} // namespace bulkhead::ctl

namespace bulkhead::ctl {

// The path of NAME's monitor control socket (GET /1.0/containers/NAME/console).
Result<std::string> monitor_socket(Context &ctx, const std::string &name);

} // namespace bulkhead::ctl
