// --log / --log-format / --debug: runc-compatible log lines. containerd shows the last "error"
// line of the JSON log to the user, so errors are always one line.
#pragma once

#include <string>

#include "bulkhead/runtime.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::cli {

class Logger {
public:
  Status open(const std::string &path, const std::string &format, bool debug);
  void log(LogLevel level, const std::string &msg) const;
  // An error goes to stderr as well as to the log file.
  void error(const std::string &msg) const;

private:
  UniqueFd fd_;
  bool json_ = false;
  bool debug_ = false;
};

} // namespace bulkhead::cli
