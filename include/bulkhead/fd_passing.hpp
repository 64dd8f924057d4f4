// Passing one fd over a unix socket with SCM_RIGHTS in a single message (the pty master to a
// console socket, the seccomp notify fd to its listener).
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead {

// Connects to the unix socket a caller listens on (--console-socket, --pidfd-socket); `what` names
// the flag in errors.
inline Result<UniqueFd> connect_unix_socket(const std::string &path, std::string_view what) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return failf("{} {:?}: not a usable unix socket path (1 to {} bytes)", what, path,
                 sizeof addr.sun_path - 1);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s)
    return failf_errno("{} {}: socket", what, path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  while (::connect(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
    if (errno != EINTR)
      return failf_errno("connecting to {} {}", what, path);
  return s;
}

// The payload must not be empty: on a stream socket a message without data bytes carries no
// control message either, so the fd would silently never arrive (the receiver waits forever).
inline Status send_fd(int socket, int fd, std::string_view payload, std::string_view what) {
  if (payload.empty())
    payload = std::string_view("\0", 1);
  struct iovec iov {
    const_cast<char *>(payload.data()), payload.size()
  };
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  while (::sendmsg(socket, &mh, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return failf_errno("sending {}", what);
  return {};
}

// Receives one fd sent by send_fd; the payload is ignored.
inline Result<UniqueFd> receive_fd(int socket, std::string_view what) {
  char payload[4096];
  struct iovec iov {
    payload, sizeof payload
  };
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  while (::recvmsg(socket, &mh, MSG_CMSG_CLOEXEC) < 0)
    if (errno != EINTR)
      return failf_errno("receiving {}", what);
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS)
    return failf("receiving {}: no file descriptor in the message", what);
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return UniqueFd(fd);
}

} // namespace bulkhead
