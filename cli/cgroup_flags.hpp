// Value parsing for the cgroup subcommands (update's flags, --interval, ps arguments and output):
// pure functions, unit-tested, no CLI11.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/spec.hpp"

namespace bulkhead::cli {

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
