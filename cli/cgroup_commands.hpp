// The cgroup subcommands of runc's CLI: pause, resume, update, ps, events. They only parse and
// call libbulkhead; the parsing helpers are exposed for unit tests.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bulkhead/runtime.hpp"
#include "cli/logger.hpp"

namespace bulkhead::cli {

struct CgroupCommands {
  std::string id;
  // update
  std::string resources_file; // -r FILE, "-" = stdin
  // runc's update flags, by long name ("memory", "cpu-quota", ...), as given.
  std::map<std::string, std::string> update_flags;
  // ps
  std::string ps_format = "table";
  std::vector<std::string> ps_args; // what follows the container ID (see split_ps_args)
  // events
  bool stats_once = false;
  std::string interval = "5s";

  CLI::App *pause = nullptr, *resume = nullptr, *update = nullptr, *ps = nullptr, *events = nullptr;

  void add_to(CLI::App &app);
  // The exit code when one of these subcommands was chosen, nullopt otherwise.
  std::optional<int> dispatch(Runtime &rt, const Logger &log) const;
};

// `ps [flags] ID [ps options]`: removes and returns what follows ID (a leading "--" dropped), so
// options meant for ps(1) such as -ef never reach the parser. `value_flags` are the flags taking
// a value (their value is not mistaken for the ID or the subcommand).
std::vector<std::string> split_ps_args(std::vector<std::string> &args,
                                       const std::set<std::string> &value_flags);

// Resources from `update`'s flags on top of `base` (the --resources document, if any).
Result<oci::Resources> resources_from_flags(oci::Resources base,
                                            const std::map<std::string, std::string> &flags);
// "512m", "1G", "1048576", "-1" (unlimited) -> bytes, binary units as runc's --memory.
Result<int64_t> parse_memory_size(const std::string &text);
// Go durations as runc's --interval: "5s", "100ms", "1m30s", "1.5s".
Result<int> parse_duration_ms(const std::string &text);
// The lines of ps(1) output whose PID column holds one of `pids` (header kept).
Result<std::string> filter_ps_output(const std::string &output, const std::vector<int> &pids);

} // namespace bulkhead::cli
