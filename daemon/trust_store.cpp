#include "daemon/trust_store.hpp"

#include <algorithm>

#include <fmt/core.h>
#include <openssl/crypto.h>

#include "bulkhead/io.hpp"
#include "daemon/events.hpp"
#include "migration/peer_tls.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

Result<TrustToken> parse_trust_token(const std::string &text) {
  // bh1:sha256:<64 hex>:<64 hex>
  const std::string prefix = "bh1:sha256:";
  auto bad = [&] {
    return fail(
        "not a bulkhead trust token (expected bh1:sha256:..., as printed by `bulkheadctl trust add` on the "
        "other host)",
        EINVAL);
  };
  if (text.rfind(prefix, 0) != 0)
    return bad();
  auto rest = text.substr(prefix.size());
  auto colon = rest.find(':');
  if (colon != 64 || rest.size() != 64 + 1 + 64)
    return bad();
  auto hex = [](const std::string &s) {
    return s.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  TrustToken t{"sha256:" + rest.substr(0, 64), rest.substr(65)};
  if (!hex(rest.substr(0, 64)) || !hex(t.secret))
    return bad();
  return t;
}

Result<int64_t> requested_token_life_s(const json &req) {
  constexpr int64_t kDefaultTokenLifeS = 3600;
  auto it = req.find("expires_in_s");
  if (it == req.end())
    return kDefaultTokenLifeS;
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 7 * 24 * 3600)
    return fail("\"expires_in_s\" must be 1 to 604800 seconds", EINVAL);
  return it->get<int64_t>();
}

Status check_peer_name(const std::string &name) {
  bool ok = !name.empty() && name.size() <= 63 && name[0] != '-' &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
  if (!ok)
    return fail("\"" + name + "\": a host name here is 1 to 63 of a-z, 0-9 and '-', not starting with '-'",
                EINVAL);
  return {};
}

Status TrustStore::load() {
  std::lock_guard lock(mu_);
  auto text = read_file(path_);
  if (!text)
    return text.error().code == ENOENT ? Status{} : Status(tl::unexpected(text.error()));
  try {
    auto j = json::parse(*text);
    for (auto &t : j.value("tokens", json::array()))
      tokens_.push_back({t.at("name"), t.at("secret_sha256"), t.at("expires_ms"),
                         t.value("kind", "pair") == "cluster" ? TokenKind::cluster : TokenKind::pair});
    for (auto &p : j.value("trusted", json::array()))
      trusted_.push_back({p.at("name"), p.at("fingerprint"), p.value("added_ms", int64_t{0})});
    for (auto &r : j.value("remotes", json::array()))
      remotes_.push_back(
          {r.at("name"), r.at("address"), r.at("fingerprint"), r.value("added_ms", int64_t{0})});
    cluster_key_ = j.value("cluster_key", "");
  } catch (const json::exception &e) {
    return fail(fmt::format("{}: {}", path_, e.what()), EINVAL);
  }
  return {};
}

Status TrustStore::save_locked() {
  json j = {{"tokens", json::array()}, {"trusted", json::array()}, {"remotes", json::array()}};
  for (auto &t : tokens_)
    j["tokens"].push_back({{"name", t.name},
                           {"secret_sha256", t.secret_sha256},
                           {"expires_ms", t.expires_ms},
                           {"kind", t.kind == TokenKind::cluster ? "cluster" : "pair"}});
  for (auto &p : trusted_)
    j["trusted"].push_back({{"name", p.name}, {"fingerprint", p.fingerprint}, {"added_ms", p.added_ms}});
  for (auto &r : remotes_)
    j["remotes"].push_back(
        {{"name", r.name}, {"address", r.address}, {"fingerprint", r.fingerprint}, {"added_ms", r.added_ms}});
  if (!cluster_key_.empty())
    j["cluster_key"] = cluster_key_;
  return write_file_durable(path_, j.dump(2) + "\n", 0600);
}

void TrustStore::drop_expired_locked() {
  int64_t now = now_unix_ms();
  std::erase_if(tokens_, [now](const Token &t) { return t.expires_ms <= now; });
}

Result<std::string> TrustStore::add_token(const std::string &name, int64_t expires_ms, TokenKind kind) {
  BH_CHECK(check_peer_name(name));
  std::lock_guard lock(mu_);
  drop_expired_locked();
  auto same = [&](const auto &x) { return x.name == name; };
  if (std::any_of(tokens_.begin(), tokens_.end(), same))
    return fail("a trust token for \"" + name + "\" is already pending (trust rm " + name + " first)",
                EEXIST);
  if (kind == TokenKind::pair && std::any_of(trusted_.begin(), trusted_.end(), same))
    return fail("\"" + name + "\" is trusted already (trust rm " + name + " to pair it again)", EEXIST);
  auto secret = BH_TRY(migration::random_hex(32));
  tokens_.push_back({name, migration::sha256_hex(secret), expires_ms, kind});
  if (auto r = save_locked(); !r) {
    tokens_.pop_back();
    return tl::unexpected(r.error());
  }
  return secret;
}

std::vector<TrustStore::Token>::iterator TrustStore::find_token_locked(const std::string &secret) {
  const std::string digest = migration::sha256_hex(secret);
  return std::find_if(tokens_.begin(), tokens_.end(), [&](const Token &t) {
    return t.secret_sha256.size() == digest.size() &&
           CRYPTO_memcmp(t.secret_sha256.data(), digest.data(), digest.size()) == 0;
  });
}

Result<TrustedPeer> TrustStore::redeem(const std::string &secret, const std::string &fingerprint) {
  std::lock_guard lock(mu_);
  drop_expired_locked();
  auto it = find_token_locked(secret);
  if (it == tokens_.end())
    return fail("the trust token is unknown, used already or expired", EPERM);
  if (it->kind != TokenKind::pair)
    return fail(
        "this token joins the cluster's trust: use it with `bulkheadctl cluster join`, not `remote add`",
        EPERM);
  TrustedPeer p{it->name, fingerprint, now_unix_ms()};
  auto saved_tokens = tokens_;
  auto saved_trusted = trusted_;
  tokens_.erase(it);
  std::erase_if(trusted_, [&](const TrustedPeer &t) { return t.fingerprint == fingerprint; });
  trusted_.push_back(p);
  if (auto r = save_locked(); !r) {
    tokens_ = std::move(saved_tokens);
    trusted_ = std::move(saved_trusted);
    return tl::unexpected(r.error());
  }
  return p;
}

Status TrustStore::redeem_cluster(const std::string &secret, const std::string &host) {
  std::lock_guard lock(mu_);
  drop_expired_locked();
  auto it = find_token_locked(secret);
  if (it == tokens_.end())
    return fail("the cluster token is unknown, used already or expired", EPERM);
  if (it->kind != TokenKind::cluster)
    return fail("this token pairs two hosts: use it with `bulkheadctl remote add`, not `cluster join`",
                EPERM);
  // Bound to the host it was made for, so a token copied elsewhere cannot bring in another host.
  if (it->name != host)
    return fail(fmt::format("this cluster token was made for host \"{}\", not \"{}\" (bulkheadd --host-name)",
                            it->name, host),
                EPERM);
  if (cluster_key_.empty())
    return fail("this host holds no cluster key any more", ENOKEY);
  auto saved_tokens = tokens_;
  tokens_.erase(it);
  if (auto r = save_locked(); !r) {
    tokens_ = std::move(saved_tokens);
    return r;
  }
  return {};
}

std::string TrustStore::cluster_key() {
  std::lock_guard lock(mu_);
  return cluster_key_;
}

Status TrustStore::set_cluster_key(const std::string &key) {
  std::lock_guard lock(mu_);
  auto saved = cluster_key_;
  cluster_key_ = key;
  if (auto r = save_locked(); !r) {
    cluster_key_ = std::move(saved);
    return r;
  }
  return {};
}

std::optional<TrustedPeer> TrustStore::trusted(const std::string &fingerprint) {
  std::lock_guard lock(mu_);
  for (auto &p : trusted_)
    if (p.fingerprint == fingerprint)
      return p;
  return std::nullopt;
}

Status TrustStore::revoke(const std::string &name) {
  std::lock_guard lock(mu_);
  auto saved_tokens = tokens_;
  auto saved_trusted = trusted_;
  auto n = std::erase_if(tokens_, [&](const Token &t) { return t.name == name; }) +
           std::erase_if(trusted_, [&](const TrustedPeer &t) { return t.name == name; });
  if (n == 0)
    return fail("no trusted host or pending token named \"" + name + "\"", ENOENT);
  if (auto r = save_locked(); !r) {
    tokens_ = std::move(saved_tokens);
    trusted_ = std::move(saved_trusted);
    return r;
  }
  return {};
}

json TrustStore::list_trust() {
  std::lock_guard lock(mu_);
  drop_expired_locked();
  json out = json::array();
  for (auto &p : trusted_)
    out.push_back({{"name", p.name},
                   {"state", "trusted"},
                   {"fingerprint", p.fingerprint},
                   {"added_at", p.added_ms / 1000}});
  for (auto &t : tokens_)
    out.push_back({{"name", t.name},
                   {"state", "pending"},
                   {"kind", t.kind == TokenKind::cluster ? "cluster" : "pair"},
                   {"fingerprint", nullptr},
                   {"expires_at", t.expires_ms / 1000}});
  return out;
}

Status TrustStore::add_remote(const Remote &r) {
  std::lock_guard lock(mu_);
  if (std::any_of(remotes_.begin(), remotes_.end(), [&](const Remote &x) { return x.name == r.name; }))
    return fail("a remote named \"" + r.name + "\" exists already", EEXIST);
  remotes_.push_back(r);
  if (auto s = save_locked(); !s) {
    remotes_.pop_back();
    return s;
  }
  return {};
}

Result<Remote> TrustStore::remote(const std::string &name) {
  std::lock_guard lock(mu_);
  for (auto &r : remotes_)
    if (r.name == name)
      return r;
  return fail("no remote named \"" + name + "\" (bulkheadctl remote list)", ENOENT);
}

std::vector<Remote> TrustStore::remotes() {
  std::lock_guard lock(mu_);
  return remotes_;
}

Status TrustStore::remove_remote(const std::string &name) {
  std::lock_guard lock(mu_);
  auto saved = remotes_;
  if (std::erase_if(remotes_, [&](const Remote &r) { return r.name == name; }) == 0)
    return fail("no remote named \"" + name + "\" (bulkheadctl remote list)", ENOENT);
  if (auto r = save_locked(); !r) {
    remotes_ = std::move(saved);
    return r;
  }
  return {};
}

} // namespace bulkhead::daemon
