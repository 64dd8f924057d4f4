// Linked instead of ctl_exec_run.cpp when the monitor client library was not part of the build
// (daemon/monitor.cmake absent at configure time): exec and console keep their flags, and say why
// they cannot run.
#include "cli/ctl_exec.hpp"

namespace bulkhead::ctl {

namespace {
const char *kWhy = "this bulkheadctl was built without the monitor client (bulkhead_monitor_client), which "
                   "exec and console need";
}

int run_exec(Context &, const std::string &, daemon::ExecRequest) { return report(kWhy); }
int run_console(Context &, const std::string &) { return report(kWhy); }

} // namespace bulkhead::ctl
