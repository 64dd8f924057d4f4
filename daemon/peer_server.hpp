// bulkheadd's listener for other hosts (`bulkheadd --listen ADDR:PORT`): TLS connections from
// daemons that paired with this one (daemon/trust_store.hpp) or that the cluster's key vouches for
// (daemon/cluster_trust.hpp), one thread per connection. The
// daemon never forks, so threads here are fine; handlers must not block the others' progress
// for long without a timeout.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "daemon/cluster_trust.hpp"
#include "daemon/trust_store.hpp"
#include "migration/peer_tls.hpp"
#include "storage/stream_checksum.hpp"

namespace bulkhead::daemon {

class PeerServer {
public:
  // A handler answers one request of a trusted peer on `conn` (it may exchange further messages:
  // a transfer is a conversation). An error it returns is sent back as {"ok": false, "error"}.
  using Handler = std::function<Status(migration::PeerConnection &conn, const TrustedPeer &peer,
                                       const migration::PeerMessage &request)>;

  PeerServer(const migration::PeerIdentity &me, TrustStore &trust, ClusterTrust &cluster_trust,
             std::string host_name);
  ~PeerServer();

  Status listen(const std::string &address);
  void on(const std::string &op, Handler handler); // before start()
  void start();
  // Closes the listener and every connection, and joins their threads.
  void stop();
  bool listening() const { return static_cast<bool>(listen_fd_); }
  const std::string &address() const { return address_; }

private:
  struct Conn {
    std::thread thread;
    UniqueFd socket; // a dup of the connection's socket: shutdown() on it unblocks the thread
                     // without racing the thread's own close of its descriptor
    std::atomic<bool> done{false};
  };
  void accept_loop();
  void serve(Conn &c, UniqueFd fd, std::string peer_address);
  void reap_locked(bool all);
  // A pairing or a cluster join (steps 2a, 2c); false: the connection ends.
  bool serve_pairing(migration::PeerConnection &conn, const migration::PeerMessage &m,
                     const std::string &peer_address);

  const migration::PeerIdentity &me_;
  TrustStore &trust_;
  ClusterTrust &cluster_trust_;
  std::string host_name_, address_;
  UniqueFd listen_fd_, wake_fd_;
  std::map<std::string, Handler> handlers_;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Conn> conns_;
  std::atomic<bool> stopping_{false};
};

// The client side: connects to a remote, pinning its fingerprint, and says hello; the answer's
// header carries the remote's host name and version.
Result<migration::PeerConnection> connect_remote(const Remote &remote, const migration::PeerIdentity &me,
                                                 int timeout_s, nlohmann::json *hello = nullptr);

// The checksum of a stream of set bytes (migration, replication) on both ends. The sender takes
// the best of what the receiver's answer lists ("checksums"; a receiver of an older version lists
// none and gets SHA-256); the receiver, the one the sender's request names ("checksum"; none
// named: SHA-256, an older sender).
Result<storage::StreamChecksum> checksum_for_receiver(const nlohmann::json &answer);
Result<storage::StreamChecksum> checksum_named_by_sender(const nlohmann::json &request);

} // namespace bulkhead::daemon
