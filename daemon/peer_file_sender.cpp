#include "daemon/peer_file_sender.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/core.h>

#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

PeerFileSender::PeerFileSender(migration::PeerConnection &conn, storage::StreamChecksum &sum,
                               std::function<Error(const Error &)> on_send_error)
    : conn_(conn), sum_(sum), on_send_error_(std::move(on_send_error)), buf_(kPeerChunkBytes, '\0') {}

Status PeerFileSender::file(const std::string &path, const nlohmann::json &head) {
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in)
    return failf_errno("opening {}", path);
  for (bool first = true;; first = false) {
    ssize_t n = ::read(in.get(), buf_.data(), buf_.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failf_errno("reading {}", path);
    if (n == 0 && !first)
      return {};
    const std::string_view chunk(buf_.data(), static_cast<size_t>(n));
    sum_.update(chunk);
    if (auto r = conn_.send(head, chunk); !r)
      return tl::unexpected(on_send_error_ ? on_send_error_(r.error()) : r.error());
    sent_ += chunk.size();
    if (n == 0)
      return {};
  }
}

Status PeerFileSender::sized(int fd, const std::string &path, uint64_t bytes, const nlohmann::json &head,
                             const std::function<Status()> &before_chunk) {
  for (uint64_t done = 0; done < bytes;) {
    if (before_chunk)
      BH_CHECK(before_chunk());
    ssize_t n = ::read(fd, buf_.data(), static_cast<size_t>(std::min<uint64_t>(buf_.size(), bytes - done)));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failf_errno("reading {}", path);
    if (n == 0)
      return fail(fmt::format("{} ended before its size ({} of {} bytes)", path, done, bytes), EIO);
    const std::string_view chunk(buf_.data(), static_cast<size_t>(n));
    sum_.update(chunk);
    if (auto r = conn_.send(head, chunk); !r)
      return tl::unexpected(on_send_error_ ? on_send_error_(r.error()) : r.error());
    done += chunk.size();
    sent_ += chunk.size();
  }
  return {};
}

Status PeerFileSender::directory(const std::string &dir, nlohmann::json head) {
  std::error_code ec;
  for (const auto &f : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code type_ec; // an entry gone meanwhile is not sent
    if (f.is_symlink(type_ec) || !f.is_regular_file(type_ec))
      continue;
    head["file"] = f.path().filename().string();
    BH_CHECK(file(f.path().string(), head));
  }
  if (ec)
    return fail(fmt::format("listing {}: {}", dir, ec.message()), ec.value());
  return {};
}

} // namespace bulkhead::daemon
