#include "migration/peer_tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "bulkhead/io.hpp"
#include "migration/tls_suites.hpp"

namespace bulkhead::migration {

namespace {

constexpr uint32_t kMaxHeader = 1u << 20;
// A payload up to this size travels in the same TLS record as its header (one write, one segment).
constexpr size_t kCoalescePayload = 16 * 1024;

// OpenSSL's error queue as text (and cleared), for messages that say what TLS refused.
std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

std::string to_hex(const unsigned char *p, size_t n) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

Result<PkeyPtr> make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key)
    return fail("generating an EC P-256 key: " + ssl_errors(), EIO);
  return key;
}

Result<X509Ptr> make_self_signed(EVP_PKEY *key, const std::string &common_name) {
  X509Ptr cert(X509_new());
  if (!cert)
    return fail("allocating a certificate: " + ssl_errors(), ENOMEM);
  auto serial = BH_TRY(random_hex(16));
  BIGNUM *bn = nullptr;
  if (!BN_hex2bn(&bn, serial.c_str()))
    return fail("making a serial number: " + ssl_errors(), EIO);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600); // clocks of two hosts differ a little
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_NAME *name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char *>("bulkhead"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char *>(common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key);
  if (!X509_sign(cert.get(), key, EVP_sha256()))
    return fail("signing the certificate: " + ssl_errors(), EIO);
  return cert;
}

// PEM text of the key (PKCS#8) or the certificate.
Result<std::string> pem_of(EVP_PKEY *key, X509 *cert) {
  BIO *bio = BIO_new(BIO_s_mem());
  bool ok = key ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)
                : PEM_write_bio_X509(bio, cert);
  std::string out;
  if (ok) {
    char *data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  if (!ok)
    return fail("encoding PEM: " + ssl_errors(), EIO);
  return out;
}

// Verification for the client side: the server's leaf certificate must be the pinned one. Chain
// building is skipped on purpose: a self-signed identity has no chain, and the pin is the trust.
struct Pin {
  std::string expected, seen;
};
int verify_pinned(X509_STORE_CTX *store, void *arg) {
  auto *pin = static_cast<Pin *>(arg);
  X509 *leaf = X509_STORE_CTX_get0_cert(store);
  pin->seen = leaf ? cert_fingerprint(leaf) : "";
  bool ok = !pin->seen.empty() && pin->seen.size() == pin->expected.size() &&
            CRYPTO_memcmp(pin->seen.data(), pin->expected.data(), pin->seen.size()) == 0;
  if (!ok)
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return ok ? 1 : 0;
}
// The server side accepts any client certificate at the handshake: whether it is trusted, or may
// only redeem a token, is decided per message by daemon/peer_server.cpp.
int verify_any(X509_STORE_CTX *, void *) { return 1; }

Result<SslCtxPtr> make_ctx(const PeerIdentity &me, bool server) {
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx)
    return fail("creating a TLS context: " + ssl_errors(), EIO);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx.get(), tls13_ciphersuites().c_str()) != 1)
    return fail("setting the TLS 1.3 cipher suites " + tls13_ciphersuites() + ": " + ssl_errors(), EIO);
  if (SSL_CTX_use_certificate(ctx.get(), me.cert()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), me.key()) != 1)
    return fail("loading this daemon's certificate: " + ssl_errors(), EIO);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
  return ctx;
}

void set_socket_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A peer that vanishes (host dead, link cut: no FIN, no RST) is noticed within about 30 s, not
// after the kernel's 15 minutes of retransmissions: data unacknowledged for 30 s ends the
// connection (TCP_USER_TIMEOUT), and a connection idle while one side waits for the other's long
// work (an import, a restore) is probed every 5 s after 10 s of silence. A live peer's kernel
// answers the probes whatever its daemon is doing, so a slow peer is not a dead one.
void detect_dead_peer(int fd) {
  int on = 1, idle = 10, interval = 5, count = 4;
  unsigned user_timeout_ms = 30000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

Result<UniqueFd> connect_tcp(const std::string &address, int timeout_s) {
  auto [host, port] = BH_TRY(split_host_port(address));
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return fail(fmt::format("resolving {}: {}", host, ::gai_strerror(rc)), EHOSTUNREACH);
  int last_errno = EHOSTUNREACH;
  UniqueFd fd;
  for (addrinfo *ai = res; ai; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s) {
      last_errno = errno;
      continue;
    }
    if (::connect(s.get(), ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
      last_errno = errno;
      continue;
    }
    pollfd p{s.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, timeout_s * 1000);
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 0)
      err = ETIMEDOUT;
    else if (n < 0 || ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0)
      err = errno;
    if (err) {
      last_errno = err;
      continue;
    }
    fd = std::move(s);
    break;
  }
  ::freeaddrinfo(res);
  if (!fd)
    return fail(fmt::format("connecting to {}", address), last_errno);
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  detect_dead_peer(fd.get());
  set_socket_timeout(fd.get(), timeout_s);
  return fd;
}

} // namespace

std::string cert_fingerprint(X509 *cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!X509_digest(cert, EVP_sha256(), md, &n))
    return "";
  return "sha256:" + to_hex(md, n);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return to_hex(md, n);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char *>(data.data()), data.size(), md, &n);
  return to_hex(md, n);
}

Result<std::string> random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail_errno("getrandom");
    got += static_cast<size_t>(n);
  }
  return to_hex(reinterpret_cast<const unsigned char *>(raw.data()), bytes);
}

Result<PeerIdentity> PeerIdentity::load_or_create(const std::string &dir, const std::string &common_name) {
  const std::string cert_path = dir + "/cert.pem", key_path = dir + "/key.pem";
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("creating {}", dir);
  PeerIdentity id;
  if (::access(cert_path.c_str(), F_OK) < 0) {
    // The key is written before the certificate, each atomically: a crash in between leaves no
    // certificate, so the next start makes a fresh pair instead of a certificate without its key.
    auto key = BH_TRY(make_key());
    auto cert = BH_TRY(make_self_signed(key.get(), common_name));
    BH_CHECK(write_file_durable(key_path, BH_TRY(pem_of(key.get(), nullptr)), 0600));
    BH_CHECK(write_file_durable(cert_path, BH_TRY(pem_of(nullptr, cert.get())), 0644));
  }
  FILE *f = std::fopen(cert_path.c_str(), "re");
  if (!f)
    return failf_errno("opening {}", cert_path);
  id.cert_.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "re");
  if (!f)
    return failf_errno("opening {}", key_path);
  id.key_.reset(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!id.cert_ || !id.key_)
    return fail(fmt::format("reading {} and {}: {}", cert_path, key_path, ssl_errors()), EINVAL);
  if (X509_check_private_key(id.cert_.get(), id.key_.get()) != 1)
    return fail(fmt::format("{} does not belong to {}", key_path, cert_path), EINVAL);
  id.fingerprint_ = cert_fingerprint(id.cert_.get());
  return id;
}

PeerConnection::PeerConnection(UniqueFd fd, SslCtxPtr ctx, SslPtr ssl, std::string peer_fingerprint,
                               std::string peer_address)
    : fd_(std::move(fd)), ctx_(std::move(ctx)), ssl_(std::move(ssl)),
      peer_fingerprint_(std::move(peer_fingerprint)), peer_address_(std::move(peer_address)) {}

PeerConnection::~PeerConnection() {
  if (ssl_ && fd_) {
    set_socket_timeout(fd_.get(), 1);
    SSL_shutdown(ssl_.get()); // close_notify: the peer sees an orderly end, not a truncation
  }
}

void PeerConnection::set_timeout(int seconds) { set_socket_timeout(fd_.get(), seconds); }

std::string PeerConnection::cipher() const {
  const char *name = ssl_ ? SSL_get_cipher_name(ssl_.get()) : nullptr;
  return name ? name : "";
}

void PeerConnection::shutdown() {
  if (fd_)
    ::shutdown(fd_.get(), SHUT_RDWR);
}

Status PeerConnection::write_all(const void *data, size_t n) {
  const char *p = static_cast<const char *>(data);
  while (n > 0) {
    size_t written = 0;
    if (SSL_write_ex(ssl_.get(), p, n, &written) != 1) {
      int err = errno;
      // The errno text is appended by Error::text(); OpenSSL's own reason only when it has one.
      return fail(ERR_peek_error() ? fmt::format("sending to {}: {}", peer_address_, ssl_errors())
                                   : fmt::format("sending to {}", peer_address_),
                  err ? err : EIO);
    }
    p += written;
    n -= written;
  }
  return {};
}

Status PeerConnection::read_all(void *data, size_t n) {
  char *p = static_cast<char *>(data);
  while (n > 0) {
    size_t got = 0;
    errno = 0;
    if (SSL_read_ex(ssl_.get(), p, n, &got) != 1) {
      int code = SSL_get_error(ssl_.get(), 0);
      int err = errno;
      if (code == SSL_ERROR_ZERO_RETURN)
        return fail(fmt::format("{} closed the connection", peer_address_), ECONNRESET);
      if (err == EAGAIN || err == EWOULDBLOCK)
        return fail(fmt::format("{} did not answer in time", peer_address_), ETIMEDOUT);
      return fail(ERR_peek_error() ? fmt::format("receiving from {}: {}", peer_address_, ssl_errors())
                  : err            ? fmt::format("receiving from {}", peer_address_)
                                   : fmt::format("receiving from {}: connection lost", peer_address_),
                  err ? err : ECONNRESET);
    }
    p += got;
    n -= got;
  }
  return {};
}

Status PeerConnection::send(const nlohmann::json &header, std::string_view payload) {
  std::string h = header.dump();
  if (h.size() > kMaxHeader)
    return fail("a peer message header larger than 1 MiB", EMSGSIZE);
  // The frame's head (and a small payload) goes out in one TLS record: records of 4 and 8 bytes
  // cost a segment each, and a reply split across segments waited for the peer's delayed ACK.
  std::string frame;
  frame.reserve(4 + h.size() + 8 + (payload.size() <= kCoalescePayload ? payload.size() : 0));
  for (int i = 3; i >= 0; --i)
    frame.push_back(static_cast<char>(static_cast<uint32_t>(h.size()) >> (8 * i)));
  frame += h;
  for (int i = 7; i >= 0; --i)
    frame.push_back(static_cast<char>(static_cast<uint64_t>(payload.size()) >> (8 * i)));
  if (payload.size() <= kCoalescePayload) {
    frame += payload;
    return write_all(frame.data(), frame.size());
  }
  BH_CHECK(write_all(frame.data(), frame.size()));
  return write_all(payload.data(), payload.size());
}

Result<PeerMessage> PeerConnection::receive(uint64_t max_payload) {
  unsigned char prefix[4];
  BH_CHECK(read_all(prefix, sizeof prefix));
  uint32_t hlen =
      uint32_t{prefix[0]} << 24 | uint32_t{prefix[1]} << 16 | uint32_t{prefix[2]} << 8 | prefix[3];
  if (hlen > kMaxHeader)
    return fail(fmt::format("{} sent a {} byte header (at most 1 MiB)", peer_address_, hlen), EPROTO);
  std::string h(hlen, '\0');
  BH_CHECK(read_all(h.data(), h.size()));
  unsigned char len[8];
  BH_CHECK(read_all(len, sizeof len));
  uint64_t plen = 0;
  for (unsigned char b : len)
    plen = plen << 8 | b;
  if (plen > max_payload)
    return fail(fmt::format("{} sent a {} byte payload (at most {} here)", peer_address_, plen, max_payload),
                EPROTO);
  PeerMessage m;
  try {
    m.header = nlohmann::json::parse(h);
  } catch (const nlohmann::json::exception &e) {
    return fail(fmt::format("{} sent a malformed header: {}", peer_address_, e.what()), EPROTO);
  }
  if (!m.header.is_object())
    return fail(fmt::format("{} sent a header that is not a JSON object", peer_address_), EPROTO);
  m.payload.resize(plen);
  BH_CHECK(read_all(m.payload.data(), m.payload.size()));
  return m;
}

Result<PeerMessage> PeerConnection::request(const nlohmann::json &header, std::string_view payload) {
  BH_CHECK(send(header, payload));
  auto m = BH_TRY(receive());
  if (!m.header.value("ok", false))
    return fail(fmt::format("{}: {}", peer_address_, m.header.value("error", std::string("refused"))),
                m.header.value("errno", EPERM));
  return m;
}

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string &address) {
  std::string host, port;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return fail("\"" + address + "\": expected [IPV6]:PORT", EINVAL);
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || address.find(':') != colon)
      return fail("\"" + address + "\": expected HOST:PORT (an IPv6 address in brackets: [fd00::1]:7443)",
                  EINVAL);
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535)
    return fail("\"" + address + "\": the port must be a number from 1 to 65535", EINVAL);
  return std::pair{host, static_cast<uint16_t>(std::stoul(port))};
}

Result<UniqueFd> listen_tcp(const std::string &address) {
  auto [host, port] = BH_TRY(split_host_port(address));
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return fail(fmt::format("resolving {}: {}", host, ::gai_strerror(rc)), EINVAL);
  UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int err = 0;
  if (!fd)
    err = errno;
  int one = 1;
  if (!err)
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!err && (::bind(fd.get(), res->ai_addr, res->ai_addrlen) < 0 || ::listen(fd.get(), 64) < 0))
    err = errno;
  ::freeaddrinfo(res);
  if (err)
    return fail(fmt::format("listening on {}", address), err);
  return fd;
}

Result<PeerConnection> connect_peer(const std::string &address, const PeerIdentity &me,
                                    const std::string &pinned_fingerprint, int timeout_s) {
  auto fd = BH_TRY(connect_tcp(address, timeout_s));
  auto ctx = BH_TRY(make_ctx(me, false));
  Pin pin{pinned_fingerprint, {}};
  SSL_CTX_set_cert_verify_callback(ctx.get(), verify_pinned, &pin);
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1)
    return fail("setting up TLS: " + ssl_errors(), EIO);
  errno = 0;
  if (SSL_connect(ssl.get()) != 1) {
    if (!pin.seen.empty() && pin.seen != pin.expected) {
      ERR_clear_error();
      return fail(
          fmt::format("{} presented certificate {}, not the paired {}: a different host (or someone in "
                      "between) answers at that address",
                      address, pin.seen, pin.expected),
          EPERM);
    }
    int err = errno;
    return fail(fmt::format("TLS with {}: {}", address,
                            ERR_peek_error() ? ssl_errors() : ::strerror(err ? err : EIO)),
                err ? err : ECONNRESET);
  }
  // The pin lives on this stack frame; later handshakes (none: TLS 1.3 renegotiation does not
  // exist) must not see a dangling pointer.
  SSL_CTX_set_cert_verify_callback(ctx.get(), nullptr, nullptr);
  return PeerConnection(std::move(fd), std::move(ctx), std::move(ssl), pin.seen, address);
}

Result<PeerConnection> accept_peer(UniqueFd fd, const std::string &peer_address, const PeerIdentity &me,
                                   int timeout_s) {
  // Replies are small and awaited: Nagle would hold one back until the peer's delayed ACK (40 ms).
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  detect_dead_peer(fd.get());
  set_socket_timeout(fd.get(), timeout_s);
  auto ctx = BH_TRY(make_ctx(me, true));
  SSL_CTX_set_cert_verify_callback(ctx.get(), verify_any, nullptr);
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1)
    return fail("setting up TLS: " + ssl_errors(), EIO);
  errno = 0;
  if (SSL_accept(ssl.get()) != 1) {
    int err = errno;
    return fail(fmt::format("TLS with {}: {}", peer_address,
                            ERR_peek_error() ? ssl_errors() : ::strerror(err ? err : EIO)),
                err ? err : ECONNRESET);
  }
  X509Ptr peer(SSL_get1_peer_certificate(ssl.get()));
  if (!peer)
    return fail(fmt::format("{} presented no certificate", peer_address), EPERM);
  return PeerConnection(std::move(fd), std::move(ctx), std::move(ssl), cert_fingerprint(peer.get()),
                        peer_address);
}

} // namespace bulkhead::migration
