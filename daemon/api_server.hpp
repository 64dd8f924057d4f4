// bulkheadd's HTTP/1.1 + JSON API on a unix socket (docs/api.md), served by Debian's cpp-httplib.
// Access: the socket is 0660 root:bulkhead (root only when the group does not exist), and every
// connection's SO_PEERCRED is checked too (uid 0 or a member of group bulkhead), so a socket
// whose mode was loosened by hand still refuses strangers.
#pragma once

#include <memory>
#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

class Daemon;

class ApiServer {
public:
  ApiServer(Daemon &daemon, std::string socket_path);
  ~ApiServer();
  // Binds the socket (removing a stale one), sets its owner and mode.
  Status bind();
  // Serves until stop() (blocks).
  void serve();
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace bulkhead::daemon
