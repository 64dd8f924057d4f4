// The console log: everything the container's console printed, bounded to `max` bytes per file by
// renaming it to PATH.1 (replacing the previous one) and starting a new file. At most 2*max bytes
// on disk per container.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

class ConsoleLog {
public:
  ConsoleLog() = default;
  // Takes an fd opened O_WRONLY|O_APPEND on `path` (it survives the re-exec into watch mode).
  ConsoleLog(std::string path, UniqueFd fd, uint64_t max);
  static Result<UniqueFd> open(const std::string &path);

  // Errors (a full disk) are reported once per rotation, never fatal: the console keeps flowing.
  void write(std::string_view data);
  int fd() const { return fd_.get(); }

private:
  void rotate();

  std::string path_;
  UniqueFd fd_;
  uint64_t max_ = 0;
  uint64_t size_ = 0;
  bool warned_ = false;
};

} // namespace bulkhead::daemon
