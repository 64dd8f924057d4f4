#include "daemon/monitor_console_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::daemon {

ConsoleLog::ConsoleLog(std::string path, UniqueFd fd, uint64_t max)
    : path_(std::move(path)), fd_(std::move(fd)), max_(max) {
  struct stat st {};
  if (::fstat(fd_.get(), &st) == 0)
    size_ = static_cast<uint64_t>(st.st_size);
}

Result<UniqueFd> ConsoleLog::open(const std::string &path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd)
    return failf_errno("opening console log {}", path);
  return fd;
}

void ConsoleLog::rotate() {
  std::string old = path_ + ".1";
  if (::rename(path_.c_str(), old.c_str()) < 0 && !warned_) {
    (void)write_all(STDERR_FILENO, fmt::format("rotating {}: {}\n", path_, std::strerror(errno)), "stderr");
    warned_ = true;
  }
  auto fd = open(path_);
  if (!fd) {
    if (!warned_)
      (void)write_all(STDERR_FILENO, fd.error().text() + "\n", "stderr");
    warned_ = true;
    return; // keep writing to the renamed file rather than lose the console
  }
  fd_ = std::move(*fd);
  size_ = 0;
  warned_ = false;
}

void ConsoleLog::write(std::string_view data) {
  if (!fd_)
    return;
  if (size_ + data.size() > max_)
    rotate();
  auto r = write_all(fd_.get(), data, path_);
  if (!r && !warned_) {
    (void)write_all(STDERR_FILENO, r.error().text() + "\n", "stderr");
    warned_ = true;
  }
  size_ += data.size();
}

} // namespace bulkhead::daemon
