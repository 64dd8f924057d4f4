// runc is built on Go's flag parsing, where "-no-subreaper" and "--no-subreaper" are the same
// flag; callers rely on that. Rewrites single-dash long flags that name a known long option.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace bulkhead::cli {

std::vector<std::string> normalize_single_dash(const std::vector<std::string> &args,
                                               const std::set<std::string> &long_names);

} // namespace bulkhead::cli
