// The cgroup subcommands of runc's CLI: pause, resume, update, ps, events. They only parse and
// call libbulkhead (value parsing lives in cgroup_flags.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/runtime.hpp"
#include "cli/cgroup_flags.hpp"
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

  // Registers the subcommands, or only the one named `only` (nothing when it is not one of these).
  void add_to(CLI::App &app, std::string_view only = {});
  // The exit code when one of these subcommands was chosen, nullopt otherwise.
  std::optional<int> dispatch(Runtime &rt, const Logger &log) const;
};

} // namespace bulkhead::cli
