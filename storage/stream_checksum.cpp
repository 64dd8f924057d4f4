#include "storage/stream_checksum.hpp"

#include <algorithm>
#include <optional>

#include <fmt/core.h>
#include <xxhash.h>

#include "storage/sha256.hpp"

namespace bulkhead::storage {

struct StreamChecksum::Impl {
  // One of the two, by algorithm.
  XXH3_state_t *xxh = nullptr;
  std::optional<Sha256> sha;
  ~Impl() { XXH3_freeState(xxh); }
};

StreamChecksum::StreamChecksum(std::string algorithm, std::unique_ptr<Impl> impl)
    : algorithm_(std::move(algorithm)), impl_(std::move(impl)) {}
StreamChecksum::StreamChecksum(StreamChecksum &&) noexcept = default;
StreamChecksum &StreamChecksum::operator=(StreamChecksum &&) noexcept = default;
StreamChecksum::~StreamChecksum() = default;

Result<StreamChecksum> StreamChecksum::make(std::string_view algorithm) {
  auto impl = std::make_unique<Impl>();
  if (algorithm == kChecksumXxh3) {
    impl->xxh = XXH3_createState();
    if (impl->xxh == nullptr || XXH3_128bits_reset(impl->xxh) != XXH_OK)
      return fail("creating an XXH3 state", ENOMEM);
  } else if (algorithm == kChecksumSha256) {
    impl->sha.emplace();
  } else {
    return fail(fmt::format("unknown checksum \"{}\" (this version knows {} and {})", algorithm,
                            kChecksumXxh3, kChecksumSha256),
                EPROTONOSUPPORT);
  }
  return StreamChecksum(std::string(algorithm), std::move(impl));
}

void StreamChecksum::update(const void *data, size_t size) {
  if (impl_->xxh != nullptr)
    XXH3_128bits_update(impl_->xxh, data, size);
  else
    impl_->sha->update(data, size);
}

std::string StreamChecksum::hex_digest() {
  if (impl_->xxh == nullptr)
    return impl_->sha->hex_digest();
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(impl_->xxh));
  std::string hex;
  hex.reserve(2 * sizeof canon.digest);
  for (unsigned char b : canon.digest)
    hex += fmt::format("{:02x}", b);
  return hex;
}

std::vector<std::string> stream_checksums() {
  return {std::string(kChecksumXxh3), std::string(kChecksumSha256)};
}

std::string pick_stream_checksum(const std::vector<std::string> &offered) {
  for (const auto &mine : stream_checksums())
    if (std::find(offered.begin(), offered.end(), mine) != offered.end())
      return mine;
  return std::string(kChecksumSha256);
}

} // namespace bulkhead::storage
