#include "cgroups/freezer.hpp"

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::cgroups {

namespace {

Status write_freeze(const Cgroup &cg, const char *value) {
  return write_file_at(AT_FDCWD, cg.full_path() + "/cgroup.freeze", value, O_WRONLY);
}

Result<bool> events_say_frozen(int fd, const std::string &path) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n < 0)
    return failf_errno("reading {}", path);
  std::string_view text(buf, static_cast<size_t>(n));
  return text.find("frozen 1") != std::string_view::npos;
}

} // namespace

Status freeze(const Cgroup &cg, int timeout_ms) {
  std::string events = cg.full_path() + "/cgroup.events";
  UniqueFd fd(::open(events.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return failf_errno("opening {}", events);
  BH_CHECK(write_freeze(cg, "1"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto frozen = events_say_frozen(fd.get(), events);
    if (!frozen) {
      (void)write_freeze(cg, "0");
      return tl::unexpected(frozen.error());
    }
    if (*frozen)
      return {};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      (void)write_freeze(cg, "0");
      return failf("freezing cgroup {}: not every process stopped within {} ms (thawed again)",
                   cg.full_path(), timeout_ms);
    }
    // cgroup.events raises POLLPRI on change; the short cap covers a missed notification.
    struct pollfd p {
      fd.get(), POLLPRI, 0
    };
    if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) < 0 && errno != EINTR)
      return failf_errno("waiting for {}", events);
  }
}

Status thaw(const Cgroup &cg) { return write_freeze(cg, "0"); }

Result<bool> freeze_requested(const Cgroup &cg) {
  std::string v = BH_TRY(read_file(cg.full_path() + "/cgroup.freeze"));
  return !v.empty() && v[0] == '1';
}

} // namespace bulkhead::cgroups
