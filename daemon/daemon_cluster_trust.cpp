// The cluster's trust from the API: `cluster token NAME` and `cluster join --token T`
// (docs/remotes.md "One trust for the whole cluster"). The key and the signed entries are
// daemon/cluster_trust.hpp; the member's side of the join is step 2c of daemon/peer_server.cpp.
#include <fmt/core.h>

#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kJoinTimeoutS = 5;

Status in_a_cluster(bool joined) {
  if (!joined)
    return fail("this host is in no cluster (start bulkheadd with --cluster, --host-name and --listen)",
                EINVAL);
  return {};
}

bool is_key(const std::string &k) {
  return k.size() == 64 && k.find_first_not_of("0123456789abcdef") == std::string::npos;
}

} // namespace

Status Daemon::ensure_cluster_key() {
  std::string key = trust_->cluster_key();
  std::string cluster_id = BH_TRY(cluster_trust_->key_id_in_etcd());
  bool made = false;
  if (key.empty()) {
    if (!cluster_id.empty())
      return fail(
          fmt::format("the cluster has a key already ({}) that this host does not hold: join it with a "
                      "token from a member (`bulkheadctl cluster token {}` there, `bulkheadctl cluster "
                      "join --token TOKEN` here)",
                      cluster_id, options_.host_name),
          ENOKEY);
    // Kept before it is claimed: a crash in between leaves a key that the next attempt claims.
    key = BH_TRY(migration::random_hex(32));
    BH_CHECK(trust_->set_cluster_key(key));
    made = true;
  }
  const std::string id = cluster_key_id(key);
  if (cluster_id.empty()) {
    bool won = BH_TRY(cluster_trust_->claim_key_id(id));
    cluster_id = won ? id : BH_TRY(cluster_trust_->key_id_in_etcd());
  }
  if (cluster_id != id) {
    if (made)
      (void)trust_->set_cluster_key(""); // another host claimed the cluster's key first
    return fail(
        fmt::format("this host holds cluster key {}, the cluster's is {}: join it with a token from a "
                    "member (`bulkheadctl cluster join --token TOKEN`)",
                    id, cluster_id),
        EKEYREJECTED);
  }
  return cluster_trust_->publish(options_.host_name, options_.listen, identity_->fingerprint());
}

Result<json> Daemon::cluster_token(const json &req) {
  BH_CHECK(in_a_cluster(cluster_ != nullptr));
  if (!req.is_object() || !req.contains("name") || !req["name"].is_string())
    return fail("cluster token needs {\"name\": HOST} (the joining host's --host-name)", EINVAL);
  const std::string name = req["name"];
  BH_CHECK(check_peer_name(name));
  if (name == options_.host_name)
    return fail("\"" + name + "\" is this host: a cluster token is for the host that joins", EINVAL);
  int64_t life_s = BH_TRY(requested_token_life_s(req));
  BH_CHECK(ensure_cluster_key());
  int64_t expires = now_unix_ms() + life_s * 1000;
  auto secret = BH_TRY(trust_->add_token(name, expires, TokenKind::cluster));
  return json{{"name", name},
              {"token", "bh1:" + identity_->fingerprint() + ":" + secret},
              {"listen", options_.listen},
              {"key_id", cluster_key_id(trust_->cluster_key())},
              {"expires_at", expires / 1000}};
}

Result<json> Daemon::cluster_join(const json &req) {
  BH_CHECK(in_a_cluster(cluster_ != nullptr));
  if (!req.is_object() || !req.contains("token") || !req["token"].is_string() ||
      (req.contains("address") && !req["address"].is_string()))
    return fail("cluster join needs {\"token\", \"address\"?: \"HOST:PORT\"}", EINVAL);
  auto token = BH_TRY(parse_trust_token(req["token"].get<std::string>()));
  if (token.fingerprint == identity_->fingerprint())
    return fail("this token was made on this host: run `cluster join` on the host it was made for", EINVAL);
  std::string address = req.contains("address") ? req["address"].get<std::string>()
                                                : BH_TRY(cluster_trust_->address_of(token.fingerprint));
  BH_CHECK(migration::split_host_port(address));
  const std::string cluster_id = BH_TRY(cluster_trust_->key_id_in_etcd());
  if (cluster_id.empty())
    return fail("the cluster has no key yet: `cluster token` on a member makes it", ENOKEY);
  if (std::string mine = trust_->cluster_key(); !mine.empty() && cluster_key_id(mine) == cluster_id)
    return fail("this host holds the cluster's key already (" + cluster_id + ")", EEXIST);
  // The token pins the member's certificate before the secret is sent; the key comes back inside
  // that TLS session only.
  auto conn = BH_TRY(migration::connect_peer(address, *identity_, token.fingerprint, kJoinTimeoutS));
  auto answer =
      BH_TRY(conn.request({{"op", "cluster-join"}, {"secret", token.secret}, {"host", options_.host_name}}));
  auto k = answer.header.find("cluster_key");
  std::string key = k != answer.header.end() && k->is_string() ? k->get<std::string>() : "";
  if (!is_key(key))
    return fail(fmt::format("{} answered the join without a cluster key", address), EPROTO);
  if (cluster_key_id(key) != cluster_id)
    return fail(fmt::format("the key {} handed over ({}) is not the cluster's ({}): nothing was kept",
                            address, cluster_key_id(key), cluster_id),
                EKEYREJECTED);
  BH_CHECK(trust_->set_cluster_key(key));
  BH_CHECK(cluster_trust_->publish(options_.host_name, options_.listen, identity_->fingerprint()));
  json members = json::array();
  for (const auto &m : cluster_trust_->members())
    members.push_back(m.name);
  auto through = answer.header.find("host");
  return json{
      {"through", through != answer.header.end() && through->is_string() ? through->get<std::string>() : ""},
      {"address", address},
      {"key_id", cluster_id},
      {"members", members}};
}

} // namespace bulkhead::daemon
