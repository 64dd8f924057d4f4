// runc is built on Go's flag parsing, where "-no-subreaper" and "--no-subreaper" are the same
// flag; callers rely on that. Rewrites single-dash long flags that name a known long option.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace bulkhead::cli {

// For `exec`: everything after the container ID is the command to run, even words that look like
// flags ("exec ID sh -c 'echo x'"). Returns the words after the ID and truncates args after it.
// value_flags lists the flags (global and exec's) that take a separate value.
std::vector<std::string> split_exec_command(std::vector<std::string> &args,
                                            const std::set<std::string> &value_flags);

// The subcommand word of a command line: the first word that is neither a flag nor the value of
// one of `value_flags` (runc's Go spellings "-root" included); "" when there is none before "--"
// or a help flag.
std::string subcommand_word(const std::vector<std::string> &args, const std::set<std::string> &value_flags);

std::vector<std::string> normalize_single_dash(const std::vector<std::string> &args,
                                               const std::set<std::string> &long_names);

} // namespace bulkhead::cli
