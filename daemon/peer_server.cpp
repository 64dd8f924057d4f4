// The host-to-host handshake. Both sides hold a self-signed certificate (migration/peer_tls.hpp);
// the client pins the server's fingerprint, the server looks the client's up in its trust store.
//
// | step | client daemon (`remote add`, later migrate/replicate) | server daemon (`--listen`)          |
// |------|-------------------------------------------------------|-------------------------------------|
// | 1    | TCP connect; TLS 1.3 with its certificate; refuses a  | presents its certificate; requires  |
// |      | server certificate other than the pinned fingerprint  | one from the client (any, see 2)    |
// | 2a   | pairing: {"op":"trust","secret":S,"host":NAME}        | S matches a pending, unexpired      |
// |      | (the fingerprint and S come from the token that       | token: the token is consumed and    |
// |      | `trust add` printed on the server)                    | the client's fingerprint trusted    |
// |      |                                                       | -> {"ok":true,"host":SERVER}        |
// | 2b   | {"op":"hello"}                                        | trusted fingerprint -> {"ok":true,  |
// |      |                                                       | "host","version"}; else an error,   |
// |      |                                                       | and the connection is closed        |
// | 2c   | cluster join: {"op":"cluster-join","secret":S,        | S matches a pending, unexpired      |
// |      | "host":NAME} (from `cluster token NAME` on the server)| cluster token made for NAME: it is  |
// |      |                                                       | consumed -> {"ok":true,"host":      |
// |      |                                                       | SERVER,"cluster_key":K,"key_id"}   |
// |      | checks K's id against etcd's, keeps K, signs and      | (nothing stored: the joiner is      |
// |      | publishes its own entry (daemon/cluster_trust.hpp)     | trusted once its entry verifies)    |
// | 3    | further requests {"op":OP,...} (migration, ...)       | only from a trusted fingerprint:    |
// |      |                                                       | paired (trust.json), else a member  |
// |      |                                                       | whose cluster entry verifies; to    |
// |      |                                                       | the handler registered for OP       |
//
// An untrusted client can do nothing but 2a or 2c, once, with a secret it cannot guess (256 bits).
// The cluster key travels only in 2c's answer, inside TLS to a client that proved the secret.
#include "daemon/peer_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kHandshakeTimeoutS = 10;
constexpr int kIdleTimeoutS = 300;

std::string address_of(const sockaddr_storage &ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto *a = reinterpret_cast<const sockaddr_in *>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return fmt::format("{}:{}", buf, ntohs(a->sin_port));
  }
  auto *a = reinterpret_cast<const sockaddr_in6 *>(&ss);
  ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  return fmt::format("[{}]:{}", buf, ntohs(a->sin6_port));
}

// A string field of a peer's header, "" when absent or not a string: read before the peer is
// trusted, so a hostile header must not throw (json::value would, and end the daemon).
std::string text_field(const json &header, const char *name) {
  auto it = header.find(name);
  return it != header.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json refusal(const Error &e) { return {{"ok", false}, {"error", e.message}, {"errno", e.code}}; }

} // namespace

PeerServer::PeerServer(const migration::PeerIdentity &me, TrustStore &trust, ClusterTrust &cluster_trust,
                       std::string host_name)
    : me_(me), trust_(trust), cluster_trust_(cluster_trust), host_name_(std::move(host_name)) {}

PeerServer::~PeerServer() { stop(); }

Status PeerServer::listen(const std::string &address) {
  listen_fd_ = BH_TRY(migration::listen_tcp(address));
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_)
    return fail_errno("creating the peer listener's eventfd");
  address_ = address;
  return {};
}

void PeerServer::on(const std::string &op, Handler handler) { handlers_[op] = std::move(handler); }

void PeerServer::start() {
  if (listen_fd_)
    acceptor_ = std::thread([this] { accept_loop(); });
}

void PeerServer::stop() {
  if (stopping_.exchange(true))
    return;
  if (wake_fd_) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
  }
  if (acceptor_.joinable())
    acceptor_.join();
  std::lock_guard lock(mu_);
  reap_locked(true);
}

void PeerServer::reap_locked(bool all) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (all && it->socket)
      ::shutdown(it->socket.get(), SHUT_RDWR); // unblocks its thread's read
    if (all || it->done) {
      it->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void PeerServer::accept_loop() {
  while (!stopping_) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      fmt::print(stderr, "bulkheadd: peer listener: poll: {}\n", ::strerror(errno));
      return;
    }
    if (p[1].revents)
      return;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    UniqueFd fd(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr *>(&ss), &len, SOCK_CLOEXEC));
    if (!fd)
      continue;
    std::lock_guard lock(mu_);
    reap_locked(false);
    auto &c = conns_.emplace_back();
    c.socket.reset(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    c.thread = std::thread(
        [this, &c, f = std::move(fd), a = address_of(ss)]() mutable { serve(c, std::move(f), a); });
  }
}

void PeerServer::serve(Conn &c, UniqueFd fd, std::string peer_address) {
  auto conn = migration::accept_peer(std::move(fd), peer_address, me_, kHandshakeTimeoutS);
  if (!conn) {
    fmt::print(stderr, "bulkheadd: peer {}: {}\n", peer_address, conn.error().text());
    c.done = true;
    return;
  }
  conn->set_timeout(kIdleTimeoutS);
  while (!stopping_) {
    auto m = conn->receive();
    if (!m)
      break; // the peer closed, timed out, or spoke garbage: the connection ends
    std::string op = text_field(m->header, "op");
    if (op == "trust" || op == "cluster-join") {
      if (!serve_pairing(*conn, *m, peer_address))
        break;
      continue;
    }
    auto peer = trust_.trusted(conn->peer_fingerprint());
    if (!peer)
      peer = cluster_trust_.peer(conn->peer_fingerprint());
    if (!peer) {
      (void)conn->send(
          refusal(Error{EPERM, "this host does not trust certificate " + conn->peer_fingerprint() +
                                   " (pair with `bulkheadctl trust add` here and `remote add` "
                                   "there, or `cluster token` here and `cluster join` there)"}));
      break;
    }
    Status r;
    if (op == "hello") {
      r = conn->send(
          {{"ok", true}, {"host", host_name_}, {"version", BULKHEAD_VERSION}, {"you", peer->name}});
    } else if (auto h = handlers_.find(op); h != handlers_.end()) {
      // Handlers read fields with json::value(), which throws on a field of the wrong type: a
      // peer's malformed message is refused here (a parse boundary), never a dead daemon.
      Status s;
      try {
        s = h->second(*conn, *peer, *m);
      } catch (const nlohmann::json::exception &e) {
        s = fail(fmt::format("a malformed \"{}\" request: {}", op, e.what()), EPROTO);
      }
      if (!s)
        r = conn->send(refusal(s.error()));
    } else {
      r = conn->send(refusal(Error{EOPNOTSUPP, "unknown peer request \"" + op + "\""}));
    }
    if (!r)
      break;
  }
  c.done = true;
}

bool PeerServer::serve_pairing(migration::PeerConnection &conn, const migration::PeerMessage &m,
                               const std::string &peer_address) {
  const bool join = text_field(m.header, "op") == "cluster-join";
  const std::string secret = text_field(m.header, "secret");
  const std::string host = text_field(m.header, "host");
  if (!join) {
    auto p = trust_.redeem(secret, conn.peer_fingerprint());
    if (!p) {
      fmt::print(stderr, "bulkheadd: peer {}: pairing refused: {}\n", peer_address, p.error().message);
      (void)conn.send(refusal(p.error()));
      return false;
    }
    fmt::print(stderr, "bulkheadd: trusted {} ({}, calls itself {}) from {}\n", p->name, p->fingerprint, host,
               peer_address);
    return static_cast<bool>(conn.send({{"ok", true}, {"host", host_name_}}));
  }
  auto r = trust_.redeem_cluster(secret, host);
  if (!r) {
    fmt::print(stderr, "bulkheadd: peer {}: cluster join of {} refused: {}\n", peer_address, host,
               r.error().message);
    (void)conn.send(refusal(r.error()));
    return false;
  }
  const std::string key = trust_.cluster_key();
  fmt::print(stderr, "bulkheadd: cluster: {} ({}) joined the cluster's trust from {}\n", host,
             conn.peer_fingerprint(), peer_address);
  return static_cast<bool>(
      conn.send({{"ok", true}, {"host", host_name_}, {"cluster_key", key}, {"key_id", cluster_key_id(key)}}));
}

Result<migration::PeerConnection> connect_remote(const Remote &remote, const migration::PeerIdentity &me,
                                                 int timeout_s, json *hello) {
  auto conn = BH_TRY(migration::connect_peer(remote.address, me, remote.fingerprint, timeout_s));
  auto answer = BH_TRY(conn.request({{"op", "hello"}}));
  if (hello)
    *hello = answer.header;
  return conn;
}

Result<storage::StreamChecksum> checksum_for_receiver(const json &answer) {
  std::vector<std::string> offered;
  if (auto it = answer.find("checksums"); it != answer.end() && it->is_array())
    for (const auto &a : *it)
      if (a.is_string())
        offered.push_back(a.get<std::string>());
  return storage::StreamChecksum::make(storage::pick_stream_checksum(offered));
}

Result<storage::StreamChecksum> checksum_named_by_sender(const json &request) {
  auto it = request.find("checksum");
  if (it == request.end())
    return storage::StreamChecksum::make(storage::kChecksumSha256);
  if (!it->is_string())
    return fail("\"checksum\" must be the name of a checksum (got " + it->dump() + ")", EPROTO);
  return storage::StreamChecksum::make(it->get<std::string>());
}

} // namespace bulkhead::daemon
