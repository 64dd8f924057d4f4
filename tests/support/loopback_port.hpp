// A TCP port on 127.0.0.1 for tests of clients against a peer that is not there: bound and not
// listening (connecting is refused), or listening and never accepting (the kernel completes the
// connection from the backlog and nobody answers, so only a read timeout ends a request).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace bh_test {

struct LoopbackPort {
  int fd = -1;
  int port = 0; // 0 when the port could not be set up
  explicit LoopbackPort(bool listening = false) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0 ||
        (listening && ::listen(fd, 16) < 0) || ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) < 0)
      return;
    port = ntohs(a.sin_port);
  }
  LoopbackPort(const LoopbackPort &) = delete;
  LoopbackPort &operator=(const LoopbackPort &) = delete;
  void close() {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
  ~LoopbackPort() { close(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

} // namespace bh_test
