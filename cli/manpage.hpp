// A roff man page generated from a CLI11 command tree, so the page lists exactly the commands and
// flags the binary parses. Shared by bulkheadctl and bulkheadd (their hidden --generate-man).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace bulkhead::cli {

struct ManPageInfo {
  std::string section = "1";
  std::string date;        // e.g. "2026-12-03"; empty: omitted
  std::string source;      // e.g. "bulkhead 0.1.0"
  std::string manual;      // e.g. "bulkhead manual"
  std::string description; // DESCRIPTION paragraphs (blank line between paragraphs); empty: the app's
  std::string see_also;    // e.g. "bulkheadd(8), bulkhead(8)"
};

// Options in an empty group are hidden in CLI11 and left out here too.
std::string generate_manpage(const CLI::App &app, const ManPageInfo &info);

// Escapes text for roff: backslashes, leading dots/quotes, hyphens in flags.
std::string roff_escape(const std::string &text);

} // namespace bulkhead::cli
