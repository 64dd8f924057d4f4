#include "runtime/sync.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

namespace bulkhead::runtime {

namespace {
struct Header {
  uint32_t type;
  int32_t value;
  int32_t code;
};
constexpr size_t kMaxPayload = 64 * 1024;
} // namespace

Status send_msg(int fd, Msg type, int32_t value, std::string_view payload, int32_t code) {
  Header h{static_cast<uint32_t>(type), value, code};
  struct iovec iov[2] = {{&h, sizeof h}, {const_cast<char *>(payload.data()), payload.size()}};
  struct msghdr mh {};
  mh.msg_iov = iov;
  mh.msg_iovlen = payload.empty() ? 1 : 2;
  while (::sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR)
      return failf_errno("sync socket: sending message {}", static_cast<int>(type));
  }
  return {};
}

Result<Message> recv_msg(int fd) {
  static thread_local char buf[sizeof(Header) + kMaxPayload];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) < 0)
    if (errno != EINTR)
      return failf_errno("sync socket: receiving");
  if (n == 0)
    return fail("sync socket: peer exited", EPIPE);
  if (static_cast<size_t>(n) < sizeof(Header))
    return fail("sync socket: short message");
  Header h;
  std::memcpy(&h, buf, sizeof h);
  Message m;
  m.type = static_cast<Msg>(h.type);
  m.value = h.value;
  m.code = h.code;
  m.payload.assign(buf + sizeof h, static_cast<size_t>(n) - sizeof h);
  return m;
}

void send_error(int fd, const Error &e) { (void)send_msg(fd, Msg::Error, 0, e.message, e.code); }

} // namespace bulkhead::runtime
