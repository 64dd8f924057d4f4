#include "cli/argv.hpp"

namespace bulkhead::cli {

std::vector<std::string> normalize_single_dash(const std::vector<std::string> &args,
                                               const std::set<std::string> &long_names) {
  std::vector<std::string> out;
  out.reserve(args.size());
  bool done = false;
  for (const auto &a : args) {
    if (a == "--") done = true;
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
