// The host-to-host channel of bulkheadd (migration, replication): TLS 1.3 over TCP with mutual
// certificates pinned by their SHA-256 fingerprints. There is no CA: each daemon makes a
// self-signed identity at its first start, and two daemons learn each other's fingerprint once,
// through a one-time token (daemon/peer_server.cpp has the handshake table), as `incus remote
// add` does. Pinning a fingerprint instead of trusting a CA means a stolen CA key, a DNS answer or
// a reused address can never make a daemon talk to a host it was not paired with.
//
// A connection carries framed messages: a JSON header and an optional binary payload.
//   u32 header length (big-endian, <= 1 MiB) | header JSON | u64 payload length | payload
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::migration {

struct OpenSslDeleter {
  void operator()(X509 *p) const { X509_free(p); }
  void operator()(EVP_PKEY *p) const { EVP_PKEY_free(p); }
  void operator()(SSL_CTX *p) const { SSL_CTX_free(p); }
  void operator()(SSL *p) const { SSL_free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter>;

// "sha256:" + 64 lowercase hex digits of the certificate's DER encoding.
std::string cert_fingerprint(X509 *cert);
// Hex SHA-256 of any bytes (the trust store keeps tokens' secrets only as this).
std::string sha256_hex(std::string_view data);
// Hex HMAC-SHA256 of data under key (the cluster's trust entries, daemon/cluster_trust.hpp).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// n random bytes as 2n hex digits, from the kernel's CSPRNG.
Result<std::string> random_hex(size_t bytes);

class PeerIdentity {
public:
  // <dir>/cert.pem and <dir>/key.pem (0600), made on first use: an EC P-256 key and a
  // self-signed certificate for `common_name`, valid for 10 years.
  static Result<PeerIdentity> load_or_create(const std::string &dir, const std::string &common_name);
  const std::string &fingerprint() const { return fingerprint_; }
  X509 *cert() const { return cert_.get(); }
  EVP_PKEY *key() const { return key_.get(); }

private:
  X509Ptr cert_;
  PkeyPtr key_;
  std::string fingerprint_;
};

struct PeerMessage {
  nlohmann::json header;
  std::string payload;
};

class PeerConnection {
public:
  PeerConnection(UniqueFd fd, SslCtxPtr ctx, SslPtr ssl, std::string peer_fingerprint,
                 std::string peer_address);
  PeerConnection(PeerConnection &&) noexcept = default;
  PeerConnection &operator=(PeerConnection &&) noexcept = default;
  ~PeerConnection();

  Status send(const nlohmann::json &header, std::string_view payload = {});
  // A payload larger than max_payload is an error (the peer is confused or hostile).
  Result<PeerMessage> receive(uint64_t max_payload = uint64_t{64} << 20);
  // send + receive; a reply {"ok": false, "error": E} becomes an error with E.
  Result<PeerMessage> request(const nlohmann::json &header, std::string_view payload = {});
  // Socket timeouts for every later read and write (0 = none).
  void set_timeout(int seconds);
  // Unblocks a reader in another thread (used when the daemon shuts down).
  void shutdown();

  const std::string &peer_fingerprint() const { return peer_fingerprint_; }
  const std::string &peer_address() const { return peer_address_; }
  // The negotiated TLS 1.3 suite, e.g. "TLS_CHACHA20_POLY1305_SHA256" (migration/tls_suites.hpp).
  std::string cipher() const;
  int fd() const { return fd_.get(); }

private:
  Status write_all(const void *data, size_t n);
  Status read_all(void *data, size_t n);

  UniqueFd fd_;
  SslCtxPtr ctx_;
  SslPtr ssl_;
  std::string peer_fingerprint_, peer_address_;
};

// "198.18.0.1:7443", "[fd00::1]:7443" or "name:7443" -> host and port (port 1..65535).
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string &address);

// A listening TCP socket on `address` (SO_REUSEADDR, CLOEXEC).
Result<UniqueFd> listen_tcp(const std::string &address);

// Connects and completes TLS, refusing a server whose certificate is not `pinned_fingerprint`.
Result<PeerConnection> connect_peer(const std::string &address, const PeerIdentity &me,
                                    const std::string &pinned_fingerprint, int timeout_s);

// Completes TLS on an accepted socket. The client must present a certificate; which ones are
// trusted is the caller's decision (peer_fingerprint()).
Result<PeerConnection> accept_peer(UniqueFd fd, const std::string &peer_address, const PeerIdentity &me,
                                   int timeout_s);

} // namespace bulkhead::migration
