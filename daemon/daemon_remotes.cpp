// Pairing with other hosts: `trust add|list|rm` (who may connect to this daemon) and
// `remote add|list|rm` (whom this daemon connects to). The wire handshake is in peer_server.cpp.
#include <unistd.h>

#include <fmt/core.h>

#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kRemoteTimeoutS = 5;

std::string own_host_name(const std::string &configured) {
  if (!configured.empty())
    return configured;
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

json remote_json(const Remote &r) {
  return {{"name", r.name},
          {"address", r.address},
          {"fingerprint", r.fingerprint},
          {"added_at", r.added_ms / 1000}};
}

} // namespace

Status Daemon::init_peers() {
  options_.host_name = own_host_name(options_.host_name);
  auto id = BH_TRY(
      migration::PeerIdentity::load_or_create(options_.root + "/tls", "bulkheadd " + options_.host_name));
  identity_ = std::make_unique<migration::PeerIdentity>(std::move(id));
  trust_ = std::make_unique<TrustStore>(options_.root + "/trust.json");
  BH_CHECK(trust_->load());
  cluster_trust_ = std::make_unique<ClusterTrust>(*trust_);
  peers_ = std::make_unique<PeerServer>(*identity_, *trust_, *cluster_trust_, options_.host_name);
  register_migration_handlers();
  register_replica_handlers();
  if (!options_.listen.empty()) {
    BH_CHECK(peers_->listen(options_.listen));
    peers_->start();
  }
  return {};
}

Result<json> Daemon::trust_add(const json &req) {
  if (!req.is_object() || !req.contains("name") || !req["name"].is_string())
    return fail("trust add needs {\"name\": HOST}", EINVAL);
  int64_t life_s = BH_TRY(requested_token_life_s(req));
  if (!peers_->listening())
    return fail("this bulkheadd does not listen for other hosts, so nobody could use a token (start it with "
                "--listen ADDR:PORT)",
                EINVAL);
  std::string name = req["name"];
  int64_t expires = now_unix_ms() + life_s * 1000;
  auto secret = BH_TRY(trust_->add_token(name, expires));
  return json{{"name", name},
              {"token", "bh1:" + identity_->fingerprint() + ":" + secret},
              {"listen", options_.listen},
              {"expires_at", expires / 1000}};
}

json Daemon::trust_list() { return trust_->list_trust(); }

Status Daemon::trust_remove(const std::string &name) { return trust_->revoke(name); }

Result<json> Daemon::remote_add(const json &req) {
  for (const char *k : {"name", "address", "token"})
    if (!req.is_object() || !req.contains(k) || !req[k].is_string())
      return fail("remote add needs {\"name\", \"address\": \"HOST:PORT\", \"token\"}", EINVAL);
  Remote r{req["name"], req["address"], "", now_unix_ms()};
  BH_CHECK(check_peer_name(r.name));
  BH_CHECK(migration::split_host_port(r.address));
  if (trust_->remote(r.name))
    return fail("a remote named \"" + r.name + "\" exists already", EEXIST);
  auto token = BH_TRY(parse_trust_token(req["token"].get<std::string>()));
  r.fingerprint = token.fingerprint;
  // The token pins the server's certificate before anything is sent: a wrong address or a host
  // in between fails here, and the secret never reaches it.
  auto conn = BH_TRY(migration::connect_peer(r.address, *identity_, r.fingerprint, kRemoteTimeoutS));
  auto answer =
      BH_TRY(conn.request({{"op", "trust"}, {"secret", token.secret}, {"host", options_.host_name}}));
  BH_CHECK(trust_->add_remote(r));
  json j = remote_json(r);
  j["host"] = answer.header.value("host", "");
  return j;
}

json Daemon::remote_list() {
  json out = json::array();
  for (const auto &r : trust_->remotes()) {
    json j = remote_json(r);
    json hello;
    if (auto c = connect_remote(r, *identity_, kRemoteTimeoutS, &hello); c) {
      j["status"] = "online";
      j["host"] = hello.value("host", "");
      j["version"] = hello.value("version", "");
    } else {
      j["status"] = "unreachable";
      j["error"] = c.error().text();
    }
    out.push_back(std::move(j));
  }
  return out;
}

Result<Remote> Daemon::peer_remote(const std::string &name) {
  auto r = trust_->remote(name);
  if (r)
    return r;
  if (auto member = cluster_trust_->remote(name))
    return *member;
  if (cluster_)
    return fail(fmt::format("no remote named \"{}\" (bulkheadctl remote list) and no host \"{}\" trusted "
                            "through the cluster's key (bulkheadctl cluster list; `cluster token {}` on a "
                            "member and `cluster join` there bring it in)",
                            name, name, name),
                ENOENT);
  return r;
}

Status Daemon::remote_remove(const std::string &name) { return trust_->remove_remote(name); }

} // namespace bulkhead::daemon
