// A bash completion script generated from a CLI11 command tree: subcommands at every level, each
// command's flags, and (through `dynamic`) words that only the running system knows, such as
// container names. Shared by bulkheadctl and bulkheadd (their hidden --generate-completion).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

namespace bulkhead::cli {

struct CompletionInfo {
  // Key: "SUBCOMMAND PATH:POSITIONAL NAME", e.g. "start:NAME" or "template rm:NAME"; value: a
  // shell command whose output lines are the candidates ("bulkheadctl list -q").
  std::map<std::string, std::string> dynamic;
  // Flags whose value is a file path (completed with files): long names, e.g. "--socket".
  std::vector<std::string> file_flags;
  // Whether a subcommand also takes its ancestors' flags (CLI11's fallthrough, as in bulkheadctl);
  // false for programs whose global flags must come before the subcommand (bulkhead, as runc).
  bool inherit_flags = true;
};

std::string generate_bash_completion(const CLI::App &app, const CompletionInfo &info);

} // namespace bulkhead::cli
