#include "cli/logger.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "runtime/state_store.hpp"

namespace bulkhead::cli {

namespace {
const char *level_name(LogLevel l) {
  switch (l) {
  case LogLevel::Debug:
    return "debug";
  case LogLevel::Info:
    return "info";
  case LogLevel::Warning:
    return "warning";
  case LogLevel::Error:
    return "error";
  }
  return "info";
}
} // namespace

Status Logger::open(const std::string &path, const std::string &format, bool debug) {
  json_ = format == "json";
  debug_ = debug;
  if (path.empty())
    return {};
  fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd_)
    return failf_errno("opening log file {}", path);
  return {};
}

void Logger::log(LogLevel level, const std::string &msg) const {
  if (level == LogLevel::Debug && !debug_)
    return;
  std::string line;
  if (json_) {
    nlohmann::ordered_json j = {{"level", level_name(level)}, {"msg", msg}, {"time", runtime::now_rfc3339()}};
    line = j.dump() + "\n";
  } else {
    line = fmt::format("time={:?} level={} msg={:?}\n", runtime::now_rfc3339(), level_name(level), msg);
  }
  int fd = fd_ ? fd_.get() : STDERR_FILENO;
  if (!fd_ && level != LogLevel::Warning && level != LogLevel::Error && !debug_)
    return;
  (void)::write(fd, line.data(), line.size());
}

void Logger::error(const std::string &msg) const {
  if (fd_)
    log(LogLevel::Error, msg);
  auto line = "bulkhead: " + msg + "\n";
  (void)::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace bulkhead::cli
