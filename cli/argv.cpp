#include "cli/argv.hpp"

namespace bulkhead::cli {

std::vector<std::string> split_exec_command(std::vector<std::string> &args,
                                            const std::set<std::string> &value_flags) {
  bool in_exec = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--") {
      if (!in_exec)
        return {};
      std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
      args.resize(i);
      return rest;
    }
    if (a.size() > 1 && a[0] == '-') {
      if (a.find('=') == std::string::npos && value_flags.count(a))
        ++i; // skip its value
      continue;
    }
    if (!in_exec) {
      if (a != "exec")
        return {}; // another subcommand
      in_exec = true;
      continue;
    }
    // The container ID: what follows is the command ("ID -- cmd" is accepted too).
    std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
    args.resize(i + 1);
    if (!rest.empty() && rest[0] == "--")
      rest.erase(rest.begin());
    return rest;
  }
  return {};
}

std::string subcommand_word(const std::vector<std::string> &args, const std::set<std::string> &value_flags) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--" || a == "-h" || a == "--help" || a == "-help")
      return ""; // the top-level help lists every subcommand
    if (a.size() > 1 && a[0] == '-') {
      if (a.find('=') == std::string::npos && (value_flags.count(a) || value_flags.count("-" + a)))
        ++i;
      continue;
    }
    return a;
  }
  return "";
}

std::vector<std::string> normalize_single_dash(const std::vector<std::string> &args,
                                               const std::set<std::string> &long_names) {
  std::vector<std::string> out;
  out.reserve(args.size());
  bool done = false;
  for (const auto &a : args) {
    if (a == "--")
      done = true;
    if (!done && a.size() > 2 && a[0] == '-' && a[1] != '-') {
      auto name = a.substr(1, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 1);
      if (long_names.count(name)) {
        out.push_back("-" + a);
        continue;
      }
    }
    out.push_back(a);
  }
  return out;
}

} // namespace bulkhead::cli
