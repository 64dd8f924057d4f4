// What the man page and completion generators read from a CLI11 tree, in one place: the visible
// subcommands and options, and how an option is spelled.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace bulkhead::cli {

// Subcommands in definition order, hidden ones (empty group) left out.
std::vector<const CLI::App *> visible_subcommands(const CLI::App &app);
// Named options (not positionals), hidden ones and the help flag left out.
std::vector<const CLI::Option *> visible_options(const CLI::App &app);
std::vector<const CLI::Option *> positionals(const CLI::App &app);
// "-t, --tty" / "--memory".
std::vector<std::string> option_spellings(const CLI::Option &o);
bool takes_value(const CLI::Option &o);
// The word shown for an option's value: its type name without CLI11's validator annotations.
std::string value_name(const CLI::Option &o);
// "template import": the words from the root's child down to app.
std::string command_path(const CLI::App &app);

} // namespace bulkhead::cli
