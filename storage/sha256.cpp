#include "storage/sha256.hpp"

#include <openssl/evp.h>

namespace bulkhead::storage {

struct Sha256::Impl {
  EVP_MD_CTX *ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
    std::abort(); // only on allocation failure: nothing sensible to return
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void *data, size_t size) { EVP_DigestUpdate(impl_->ctx, data, size); }

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.hex_digest();
}

Result<std::string> parse_sha256_digest(std::string_view digest) {
  constexpr std::string_view prefix = "sha256:";
  if (!digest.starts_with(prefix))
    return fail(fmt::format("digest {}: only sha256 digests are supported", digest), EINVAL);
  std::string_view hex = digest.substr(prefix.size());
  bool ok = hex.size() == 64;
  for (char c : hex)
    ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok)
    return fail(fmt::format("digest {}: not 64 lowercase hex digits", digest), EINVAL);
  return std::string(hex);
}

} // namespace bulkhead::storage
