// SHA-256 for OCI blob digests. OpenSSL's EVP is used because libarchive has no public hashing
// API, and libcrypto is already on every Debian host (and uses the CPU's SHA extensions).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256 &) = delete;
  Sha256 &operator=(const Sha256 &) = delete;
  void update(const void *data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  std::string hex_digest(); // lowercase hex; the object is finished afterwards

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);

// Checks "sha256:<64 lowercase hex>" and returns the hex part (also the blob's file name, so it must
// never be anything else: a digest is a path component of blobs/). EINVAL otherwise.
Result<std::string> parse_sha256_digest(std::string_view digest);

} // namespace bulkhead::storage
