// The cluster's trust (issue 14's join token; docs/remotes.md "One trust for the whole cluster"):
// every member holds one secret, the cluster key, and signs with it its own entry in etcd,
//   /bulkhead/trust/NAME = {"name", "address", "fingerprint", "mac": HMAC-SHA256(key, the three)},
// and trusts, both as a peer that connects to it and as a remote it connects to (by its
// --host-name), every host whose entry verifies under the key. N hosts then need N-1 joins
// instead of N*(N-1) pairings, and `protect --standby HOST` / `migrate HOST` reach any member.
//
// etcd is not trusted with the trust: the test bed's etcd speaks plain HTTP and anyone who can
// write to it could add an entry, but not its MAC. What etcd can still do is delete or replay
// entries (a deleted host is not trusted until it publishes again; a replayed entry carries the
// certificate it was signed for, whose private key only that host has).
//
// The key reaches a new host once: the first `cluster token` makes it (claiming its id in
// /bulkhead/trust-key, so a cluster has one key), `cluster join` hands it to the joiner over the
// pinned TLS channel in exchange for a one-time token made for that host (daemon/peer_server.cpp).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "daemon/trust_store.hpp"

namespace bulkhead::daemon {

inline constexpr const char *kTrustPrefix = "/bulkhead/trust/";
inline constexpr const char *kTrustKeyIdKey = "/bulkhead/trust-key";

// A name for the key that reveals nothing of it: the cluster publishes it, and a joiner checks the
// key it received against it.
std::string cluster_key_id(const std::string &key);
// The MAC of one host's entry (hex).
std::string trust_entry_mac(const std::string &key, const std::string &name, const std::string &address,
                            const std::string &fingerprint);

class ClusterTrust {
public:
  explicit ClusterTrust(TrustStore &store) : store_(store) {}

  // Until attached (a daemon without --cluster, or before it joined), nobody is trusted here.
  void attach(const cluster::EtcdClient *client);

  // Signs and puts this host's entry (no lease: a dead host stays trusted, so it can come back).
  Status publish(const std::string &name, const std::string &address, const std::string &fingerprint);

  // A verified member by its certificate / by its host name. A miss, or an entry older than
  // kMaxAge, rereads etcd first (at most once a second on misses: an unknown certificate cannot
  // make the daemon hammer etcd).
  std::optional<TrustedPeer> peer(const std::string &fingerprint);
  std::optional<Remote> remote(const std::string &name);
  std::vector<Remote> members(); // rereads etcd when its copy is a second old
  // Rereads etcd every few seconds (the cluster thread's rounds): the members stay verified in
  // memory through an etcd outage, also those this host never looked up before it.
  void keep_fresh();

  // /bulkhead/trust-key's id, "" when the cluster has none yet.
  Result<std::string> key_id_in_etcd();
  // Claims the id of this host's key for the cluster; false: another key claimed it first.
  Result<bool> claim_key_id(const std::string &id);
  // The address of the entry carrying this certificate, unverified: a joiner holds no key yet, and
  // the token's fingerprint, pinned by the TLS handshake, is what authenticates the host it reaches.
  Result<std::string> address_of(const std::string &fingerprint);

private:
  Status refresh_locked();
  void refresh_if_stale_locked(bool missed);

  TrustStore &store_;
  std::mutex mu_;
  const cluster::EtcdClient *client_ = nullptr;
  std::vector<Remote> verified_;
  int64_t refreshed_ms_ = 0; // steady clock
};

} // namespace bulkhead::daemon
