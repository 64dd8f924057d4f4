// The runc-compatible subcommands: each registers its flags and, when chosen, calls libbulkhead.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "bulkhead/runtime.hpp"
#include "cli/logger.hpp"

namespace bulkhead::cli {

struct Commands {
  CreateOptions create_opts;
  ExecOptions exec_opts;
  RunOptions run_opts;
  CheckpointOptions checkpoint_opts;
  RestoreOptions restore_opts;
  std::string id;
  std::string signal = "SIGTERM";
  bool all = false;
  bool force = false;
  std::string list_format = "table";
  bool quiet = false;
  std::string spec_bundle = ".";
  bool rootless = false;

  CLI::App *create = nullptr, *start = nullptr, *state = nullptr, *kill = nullptr, *del = nullptr,
           *run = nullptr, *list = nullptr, *spec = nullptr, *exec = nullptr, *features = nullptr,
           *checkpoint = nullptr, *restore = nullptr;

  // Registers the subcommands, or only the one named `only` (nothing when it is not one of these).
  void add_to(CLI::App &app, std::string_view only = {});
  // Returns the process exit code.
  int dispatch(Runtime &rt, const Logger &log);
};

} // namespace bulkhead::cli
