// A small etcd v3 client for cluster membership, placement, leases and leader election. It talks to
// etcd's JSON gateway (/v3/... on the client port, see docs/cluster.md) over cpp-httplib: no gRPC
// code generation, and the daemon already links that HTTP library.
//
// Thread safety: every call is const and builds its own HTTP connection from immutable settings,
// so one EtcdClient may be shared by any number of threads. Nothing here forks.
#pragma once

#include <bulkhead/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bulkhead::cluster {

// One key's value with what callers need for optimistic concurrency and liveness.
struct KeyValue {
  std::string value;
  int64_t mod_revision = 0; // pass to compare_and_swap to update only an unchanged key
  int64_t lease = 0;        // 0 when the key lives until deleted
};

// A condition of a guarded write: `key`'s mod_revision equals `mod_revision`, 0 meaning "the key does
// not exist" (etcd compares a missing key as revision 0). Several guards make one etcd txn, so a write
// can depend on other keys too (a leader's failover holds only while its own leader key and the dead
// host's absence are unchanged).
struct Guard {
  std::string key;
  int64_t mod_revision = 0;
};

class EtcdClient {
public:
  // Endpoints are "http://HOST:PORT"; a call tries them in order and moves to the next only when
  // connecting fails (a request that reached etcd is never replayed elsewhere: a txn could apply twice).
  // The timeout bounds connecting and each read, so a dead or hung etcd yields an error, not a hang.
  static Result<EtcdClient> create(std::vector<std::string> endpoints,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(2));

  // Stores a value unconditionally (records a node's heartbeat or a container's state).
  Status put(const std::string &key, const std::string &value, int64_t lease = 0) const;
  // Reads one key; nullopt when it does not exist (a placement or leader that is not set).
  Result<std::optional<KeyValue>> get(const std::string &key) const;
  // All keys under a prefix, sorted by key (the cluster's members, all placements).
  Result<std::vector<std::pair<std::string, KeyValue>>> list(const std::string &prefix) const;
  // Deletes one key; returns whether it existed (releasing a claim, leaving the cluster).
  Result<bool> remove(const std::string &key) const;
  // Deletes every key under a prefix; returns how many (cleanup of a node's or a test's keys).
  Result<int64_t> remove_prefix(const std::string &prefix) const;

  // A lease that expires ttl_s seconds after its last refresh; keys put with it vanish then,
  // which is how a crashed node's membership and claims disappear.
  // etcd raises a TTL below its minimum (1.5x its election timeout, rounded up to seconds):
  // *granted_ttl_s, when given, receives the TTL it granted.
  Result<int64_t> grant_lease(int64_t ttl_s, int64_t *granted_ttl_s = nullptr) const;
  // One refresh; returns the remaining TTL in seconds. Fails when the lease already expired:
  // the caller lost everything attached to it and must re-register.
  Result<int64_t> keep_alive(int64_t lease) const;
  // Ends a lease now, deleting its keys (a clean shutdown hands over leadership at once).
  Status revoke_lease(int64_t lease) const;

  // Creates the key only when it does not exist; true when this call created it. The primitive
  // for leader election and for claiming a container's placement: of racing callers, one wins.
  Result<bool> create_if_absent(const std::string &key, const std::string &value, int64_t lease = 0) const;
  // Replaces the value only if the key's mod_revision still equals expected_mod_revision (from
  // get/list); false when someone else changed it since, in which case nothing is written.
  Result<bool> compare_and_swap(const std::string &key, int64_t expected_mod_revision,
                                const std::string &value, int64_t lease = 0) const;

  // Puts value at key only when every guard holds, in one txn; false (nothing written) otherwise.
  Result<bool> put_if(const std::vector<Guard> &guards, const std::string &key, const std::string &value,
                      int64_t lease = 0) const;
  // Deletes key only when every guard holds; false (nothing deleted) otherwise.
  Result<bool> remove_if(const std::vector<Guard> &guards, const std::string &key) const;

  const std::vector<std::string> &endpoints() const { return urls_; }

private:
  struct Endpoint {
    std::string url; // as given, for error messages
    std::string host;
    int port = 0;
  };
  EtcdClient(std::vector<Endpoint> eps, std::vector<std::string> urls, std::chrono::milliseconds timeout)
      : endpoints_(std::move(eps)), urls_(std::move(urls)), timeout_(timeout) {}

  // POSTs body to path on the first endpoint that accepts a connection; returns etcd's answer,
  // or an error naming the endpoint(s), the path and what failed.
  // idempotent: the request changes nothing when applied twice (a read, a lease renewal), so a
  // member that does not answer in time is skipped for the next one, as one that refuses is.
  Result<nlohmann::json> call(const std::string &path, const nlohmann::json &body,
                              bool idempotent = false) const;
  Result<bool> txn_put(const std::string &key, const nlohmann::json &compare, const std::string &value,
                       int64_t lease) const;
  // One txn: the compares, then the request on success; whether it succeeded.
  Result<bool> txn(const std::vector<Guard> &guards, const nlohmann::json &request) const;

  std::vector<Endpoint> endpoints_;
  std::vector<std::string> urls_;
  std::chrono::milliseconds timeout_;
};

// Exposed for tests: the JSON gateway carries keys and values as base64.
std::string base64_encode(const std::string &in);
Result<std::string> base64_decode(const std::string &in);
// The smallest key greater than every key starting with prefix ("" means: to the end of the keyspace).
std::string prefix_range_end(const std::string &prefix);

} // namespace bulkhead::cluster
