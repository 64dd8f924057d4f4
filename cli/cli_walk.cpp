#include "cli/cli_walk.hpp"

namespace bulkhead::cli {

std::vector<const CLI::App *> visible_subcommands(const CLI::App &app) {
  return app.get_subcommands([](const CLI::App *sub) { return !sub->get_group().empty(); });
}

std::vector<const CLI::Option *> visible_options(const CLI::App &app) {
  const CLI::Option *help = app.get_help_ptr();
  return app.get_options(
      [help](const CLI::Option *o) { return o != help && !o->get_positional() && !o->get_group().empty(); });
}

std::vector<const CLI::Option *> positionals(const CLI::App &app) {
  return app.get_options([](const CLI::Option *o) { return o->get_positional(); });
}

std::vector<std::string> option_spellings(const CLI::Option &o) {
  std::vector<std::string> out;
  for (const auto &s : o.get_snames())
    out.push_back("-" + s);
  for (const auto &l : o.get_lnames())
    out.push_back("--" + l);
  return out;
}

bool takes_value(const CLI::Option &o) {
  return o.get_items_expected_min() > 0 || o.get_items_expected_max() > 0;
}

std::string value_name(const CLI::Option &o) {
  std::string t = o.get_type_name();
  // CLI11 appends validator descriptions after ':' ("S:INT in [0 - 86400]"); keep the name.
  if (auto cut = t.find(':'); cut != std::string::npos)
    t.resize(cut);
  return t.empty() ? "VALUE" : t;
}

std::string command_path(const CLI::App &app) {
  std::string path;
  for (const CLI::App *a = &app; a && a->get_parent(); a = a->get_parent())
    path = path.empty() ? a->get_name() : a->get_name() + " " + path;
  return path;
}

} // namespace bulkhead::cli
