#include "daemon/cluster_trust.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "daemon/steady_clock.hpp"
#include "migration/peer_tls.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

// etcd's values are untrusted text: a field that is not a string reads as "".
std::string field(const json &j, const char *name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A verified entry is trusted this long before the next lookup rereads etcd, so an entry removed
// there (`etcdctl del /bulkhead/trust/NAME`) stops being trusted within it.
constexpr int64_t kMaxAgeMs = 10000;
// An unknown certificate or name rereads etcd at most this often.
constexpr int64_t kMissRereadMs = 1000;
// The cluster thread's rounds reread this often.
constexpr int64_t kKeepFreshMs = 2000;

bool same_text(const std::string &a, const std::string &b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace

std::string cluster_key_id(const std::string &key) {
  return "bhk1:" + migration::hmac_sha256_hex(key, "bulkhead cluster key id").substr(0, 32);
}

std::string trust_entry_mac(const std::string &key, const std::string &name, const std::string &address,
                            const std::string &fingerprint) {
  // Each field is length-prefixed, so no two different entries sign the same text.
  return migration::hmac_sha256_hex(key, fmt::format("bulkhead trust entry v1\n{}:{}\n{}:{}\n{}:{}",
                                                     name.size(), name, address.size(), address,
                                                     fingerprint.size(), fingerprint));
}

void ClusterTrust::attach(const cluster::EtcdClient *client) {
  std::lock_guard lock(mu_);
  client_ = client;
  verified_.clear();
  refreshed_ms_ = 0;
}

Status ClusterTrust::publish(const std::string &name, const std::string &address,
                             const std::string &fingerprint) {
  std::lock_guard lock(mu_);
  if (!client_)
    return fail("this host is in no cluster (bulkheadd --cluster)", EINVAL);
  std::string key = store_.cluster_key();
  if (key.empty())
    return fail("this host holds no cluster key (bulkheadctl cluster join)", ENOKEY);
  json entry = {{"name", name},
                {"address", address},
                {"fingerprint", fingerprint},
                {"mac", trust_entry_mac(key, name, address, fingerprint)}};
  BH_CHECK(client_->put(kTrustPrefix + name, entry.dump()));
  return refresh_locked();
}

Status ClusterTrust::refresh_locked() {
  if (!client_)
    return {};
  std::string key = store_.cluster_key();
  std::vector<Remote> verified;
  if (!key.empty()) {
    auto entries = BH_TRY(client_->list(kTrustPrefix));
    for (const auto &[k, kv] : entries) {
      auto j = json::parse(kv.value, nullptr, false);
      if (!j.is_object())
        continue;
      Remote r{field(j, "name"), field(j, "address"), field(j, "fingerprint"), 0};
      // An entry is trusted only under its own key's name and with a MAC of this cluster's key.
      if (r.name.empty() || k != kTrustPrefix + r.name ||
          !same_text(field(j, "mac"), trust_entry_mac(key, r.name, r.address, r.fingerprint)))
        continue;
      verified.push_back(std::move(r));
    }
  }
  verified_ = std::move(verified);
  refreshed_ms_ = steady_ms();
  return {};
}

void ClusterTrust::refresh_if_stale_locked(bool missed) {
  if (!client_)
    return;
  int64_t age = steady_ms() - refreshed_ms_;
  if (age >= kMaxAgeMs || (missed && age >= kMissRereadMs)) {
    if (auto r = refresh_locked(); !r) {
      // etcd unreachable: what was verified stays trusted until it answers again (a running
      // replication must not stop because etcd blinked); logged by the cluster's own threads.
      refreshed_ms_ = steady_ms();
    }
  }
}

std::optional<TrustedPeer> ClusterTrust::peer(const std::string &fingerprint) {
  std::lock_guard lock(mu_);
  auto find = [&]() -> std::optional<TrustedPeer> {
    for (const auto &r : verified_)
      if (r.fingerprint == fingerprint)
        return TrustedPeer{r.name, r.fingerprint, 0};
    return std::nullopt;
  };
  refresh_if_stale_locked(false);
  if (auto p = find())
    return p;
  refresh_if_stale_locked(true);
  return find();
}

std::optional<Remote> ClusterTrust::remote(const std::string &name) {
  std::lock_guard lock(mu_);
  auto find = [&]() -> std::optional<Remote> {
    for (const auto &r : verified_)
      if (r.name == name)
        return r;
    return std::nullopt;
  };
  refresh_if_stale_locked(false);
  if (auto r = find())
    return r;
  refresh_if_stale_locked(true);
  return find();
}

std::vector<Remote> ClusterTrust::members() {
  std::lock_guard lock(mu_);
  refresh_if_stale_locked(true); // shown to a user (cluster list): as fresh as a miss's
  return verified_;
}

void ClusterTrust::keep_fresh() {
  std::lock_guard lock(mu_);
  if (client_ && steady_ms() - refreshed_ms_ >= kKeepFreshMs)
    (void)refresh_locked(); // an unreachable etcd keeps what was verified
}

Result<std::string> ClusterTrust::key_id_in_etcd() {
  std::lock_guard lock(mu_);
  if (!client_)
    return fail("this host is in no cluster (bulkheadd --cluster)", EINVAL);
  auto kv = BH_TRY(client_->get(kTrustKeyIdKey));
  if (!kv)
    return std::string();
  auto j = json::parse(kv->value, nullptr, false);
  return j.is_object() ? field(j, "id") : std::string();
}

Result<bool> ClusterTrust::claim_key_id(const std::string &id) {
  std::lock_guard lock(mu_);
  if (!client_)
    return fail("this host is in no cluster (bulkheadd --cluster)", EINVAL);
  return client_->create_if_absent(kTrustKeyIdKey, json{{"id", id}}.dump());
}

Result<std::string> ClusterTrust::address_of(const std::string &fingerprint) {
  std::lock_guard lock(mu_);
  if (!client_)
    return fail("this host is in no cluster (bulkheadd --cluster)", EINVAL);
  auto entries = BH_TRY(client_->list(kTrustPrefix));
  for (const auto &[k, kv] : entries) {
    auto j = json::parse(kv.value, nullptr, false);
    if (j.is_object() && field(j, "fingerprint") == fingerprint && !field(j, "address").empty())
      return field(j, "address");
  }
  return fail(fmt::format("no host of the cluster has certificate {} (give its address: cluster join "
                          "--address HOST:PORT)",
                          fingerprint),
              ENOENT);
}

} // namespace bulkhead::daemon
