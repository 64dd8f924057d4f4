// The checksum of a stream of image-set bytes between two hosts (replication and migration sets).
// It catches what TLS cannot: a file read short, a chunk written to the wrong place, a bug on
// either side. Authenticity is TLS's job (every record carries an AEAD tag), so the default is
// XXH3-128 (Debian's libxxhash), tens of GB/s, rather than SHA-256, which costs more than the
// encryption on a CPU without SHA extensions (44 MB/s under QEMU TCG, about 500 MB/s on such
// hardware). SHA-256 stays for a peer of an older version, which knows nothing else.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

inline constexpr std::string_view kChecksumXxh3 = "xxh3-128";
inline constexpr std::string_view kChecksumSha256 = "sha256";

class StreamChecksum {
public:
  // "xxh3-128" or "sha256"; anything else is EPROTONOSUPPORT, naming it.
  static Result<StreamChecksum> make(std::string_view algorithm);
  StreamChecksum(StreamChecksum &&) noexcept;
  StreamChecksum &operator=(StreamChecksum &&) noexcept;
  ~StreamChecksum();

  const std::string &algorithm() const { return algorithm_; }
  void update(const void *data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  std::string hex_digest(); // lowercase hex; the object is finished afterwards

private:
  struct Impl;
  explicit StreamChecksum(std::string algorithm, std::unique_ptr<Impl> impl);
  std::string algorithm_;
  std::unique_ptr<Impl> impl_;
};

// The algorithms this version understands, best first (what a receiver announces).
std::vector<std::string> stream_checksums();

// The sender's choice among what the receiver announced (a missing list: an older peer, "sha256").
std::string pick_stream_checksum(const std::vector<std::string> &offered);

} // namespace bulkhead::storage
