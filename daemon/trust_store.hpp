// Who this daemon talks to over the host-to-host channel (migration/peer_tls.hpp), kept in
// <root>/trust.json (0600, written durably):
//   tokens:  pending `trust add NAME` invitations: the SHA-256 of a one-time secret, and an expiry;
//   trusted: peers whose certificate fingerprint redeemed a token (they may connect to us);
//   remotes: peers we paired with by `remote add` (we connect to them, pinning their fingerprint);
//   cluster_key: the secret every member of this host's cluster holds (daemon/cluster_trust.hpp),
//            made by the first `cluster token` or received by `cluster join`.
// A token is consumed by its first successful use; its secret itself is never stored, so a copy
// of trust.json cannot be used to pair.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

struct TrustedPeer {
  std::string name, fingerprint;
  int64_t added_ms = 0;
};

struct Remote {
  std::string name, address, fingerprint;
  int64_t added_ms = 0;
};

// A token as printed by `trust add`: "bh1:<fingerprint of the inviting daemon>:<secret>".
struct TrustToken {
  std::string fingerprint, secret;
};
Result<TrustToken> parse_trust_token(const std::string &text);

// What a token is for: pairing two hosts (`trust add` / `remote add`) or joining the cluster's
// trust (`cluster token` / `cluster join`). A token is redeemed only for its own purpose.
enum class TokenKind { pair, cluster };

// A token's life from an API request's "expires_in_s" (1 s to 7 days; default 1 h).
Result<int64_t> requested_token_life_s(const nlohmann::json &request);

// Names of trusted peers and remotes: 1 to 63 of [a-z0-9-], starting with a letter or digit.
Status check_peer_name(const std::string &name);

class TrustStore {
public:
  explicit TrustStore(std::string path) : path_(std::move(path)) {}
  Status load();

  // A new invitation for `name`, valid until expires_ms; returns the secret (shown once).
  Result<std::string> add_token(const std::string &name, int64_t expires_ms,
                                TokenKind kind = TokenKind::pair);
  // Consumes a valid pairing token with this secret and trusts `fingerprint` under its name.
  Result<TrustedPeer> redeem(const std::string &secret, const std::string &fingerprint);
  // Consumes a valid cluster token with this secret issued for host `host` (nothing is added
  // here: the joiner is trusted through the cluster's key). A token of the other kind, or for
  // another host, is refused and left pending.
  Status redeem_cluster(const std::string &secret, const std::string &host);

  // The cluster's key (64 hex digits), "" when this host holds none.
  std::string cluster_key();
  Status set_cluster_key(const std::string &key);
  std::optional<TrustedPeer> trusted(const std::string &fingerprint);
  // Removes a trusted peer or a pending token by name.
  Status revoke(const std::string &name);
  nlohmann::json list_trust();

  Status add_remote(const Remote &r);
  Result<Remote> remote(const std::string &name);
  std::vector<Remote> remotes();
  Status remove_remote(const std::string &name);

private:
  struct Token {
    std::string name, secret_sha256;
    int64_t expires_ms = 0;
    TokenKind kind = TokenKind::pair;
  };
  // The pending token with this secret (compared in constant time), or end().
  std::vector<Token>::iterator find_token_locked(const std::string &secret);
  Status save_locked();
  void drop_expired_locked();

  std::string path_;
  std::mutex mu_;
  std::vector<Token> tokens_;
  std::vector<TrustedPeer> trusted_;
  std::vector<Remote> remotes_;
  std::string cluster_key_;
};

} // namespace bulkhead::daemon
