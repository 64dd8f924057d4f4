// Sending files to a peer daemon as framed, hashed chunks: the one way a migration's images and
// export and a replication set's files travel (daemon_migrate.cpp, replica_shipment.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "migration/peer_tls.hpp"
#include "storage/stream_checksum.hpp"

namespace bulkhead::daemon {

// The largest payload of one message of a file's stream (the receiver's limit too).
inline constexpr size_t kPeerChunkBytes = size_t{4} << 20;

class PeerFileSender {
public:
  // Every byte sent is hashed into `sum`. A failed send becomes `on_send_error(error)` (a caller
  // tells a peer's refusal from a lost connection there); a local read error stays as it is.
  PeerFileSender(migration::PeerConnection &conn, storage::StreamChecksum &sum,
                 std::function<Error(const Error &)> on_send_error = {});

  // The file at `path` (never through a symlink) as `head` + payloads of at most kPeerChunkBytes;
  // an empty file as one empty payload.
  Status file(const std::string &path, const nlohmann::json &head);
  // Every regular file of `dir`, each as `head` + {"file": its name}. Symlinks and
  // subdirectories are not sent (CRIU's parent link is made again by the receiver).
  Status directory(const std::string &dir, nlohmann::json head);
  // The first `bytes` of the open file `fd` (`path` names it in errors) as `head` + payloads; a
  // file shorter than that is EIO. `before_chunk` may stop the stream (a cancelled operation).
  Status sized(int fd, const std::string &path, uint64_t bytes, const nlohmann::json &head,
               const std::function<Status()> &before_chunk = {});

  uint64_t sent() const { return sent_; }

private:
  migration::PeerConnection &conn_;
  storage::StreamChecksum &sum_;
  std::function<Error(const Error &)> on_send_error_;
  std::string buf_;
  uint64_t sent_ = 0;
};

} // namespace bulkhead::daemon
