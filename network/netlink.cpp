#include "network/netlink.hpp"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <vector>

#include "network/message.hpp"

namespace bulkhead::net {
namespace {

struct Exchange {
  const std::function<Status(const nlmsghdr *)> *each = nullptr;
  Error error;
  bool failed = false;
};

int on_data(const nlmsghdr *nlh, void *data) {
  auto *x = static_cast<Exchange *>(data);
  if (!x->each)
    return MNL_CB_OK;
  auto r = (*x->each)(nlh);
  if (!r) {
    x->error = std::move(r.error());
    x->failed = true;
    return MNL_CB_ERROR;
  }
  return MNL_CB_OK;
}

int extack_attr(const nlattr *a, void *data) {
  if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
    *static_cast<std::string *>(data) = mnl_attr_get_str(a);
  return MNL_CB_OK;
}

// NLMSG_ERROR: error 0 is the ack; otherwise keep errno and the extended-ack message if any.
int on_error(const nlmsghdr *nlh, void *data) {
  auto *x = static_cast<Exchange *>(data);
  x->failed = true;
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    x->error = Error{EBADMSG, "truncated netlink error message"};
    return MNL_CB_ERROR;
  }
  const auto *err = static_cast<const nlmsgerr *>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) {
    x->failed = false;
    return MNL_CB_STOP;
  }
  x->error.code = -err->error;
  if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
    size_t off = sizeof(nlmsgerr);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
      off += err->msg.nlmsg_len - sizeof(nlmsghdr);
    if (off < nlh->nlmsg_len)
      mnl_attr_parse(nlh, static_cast<unsigned>(off), extack_attr, &x->error.message);
  }
  return MNL_CB_ERROR;
}

// NLMSG_DONE ends a dump; since 4.x its payload is an int, negative when the dump failed.
int on_done(const nlmsghdr *nlh, void *data) {
  auto *x = static_cast<Exchange *>(data);
  if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(int))) {
    int err = *static_cast<const int *>(mnl_nlmsg_get_payload(nlh));
    if (err < 0) {
      x->failed = true;
      x->error.code = -err;
      return MNL_CB_ERROR;
    }
  }
  return MNL_CB_STOP;
}

} // namespace

Result<Netlink> Netlink::open(const Netns &ns) {
  // The socket is bound to the netns of the thread that creates it (see netns.hpp).
  auto fd = BH_TRY(run_in(ns, []() -> Result<int> {
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
      return failf_errno("opening a rtnetlink socket");
    return fd;
  }));
  mnl_socket *sock = mnl_socket_fdopen(fd);
  if (!sock) {
    auto e = failf_errno("wrapping rtnetlink socket fd {}", fd);
    ::close(fd);
    return e;
  }
  Netlink nl(sock, 0);
  int one = 1;
  // Extended acks carry the kernel's reason ("Unknown device type"); capped acks keep them short.
  mnl_socket_setsockopt(sock, NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &one, sizeof one);
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0)
    return failf_errno("binding rtnetlink socket");
  nl.portid_ = mnl_socket_get_portid(sock);
  return nl;
}

Netlink::Netlink(Netlink &&o) noexcept
    : sock_(std::exchange(o.sock_, nullptr)), portid_(o.portid_), seq_(o.seq_) {}

Netlink &Netlink::operator=(Netlink &&o) noexcept {
  if (this != &o) {
    if (sock_)
      mnl_socket_close(sock_);
    sock_ = std::exchange(o.sock_, nullptr);
    portid_ = o.portid_;
    seq_ = o.seq_;
  }
  return *this;
}

Netlink::~Netlink() {
  if (sock_)
    mnl_socket_close(sock_);
}

Status Netlink::request(nlmsghdr *msg, std::string_view what) { return exchange(msg, nullptr, what); }

Status Netlink::query(nlmsghdr *msg, const std::function<Status(const nlmsghdr *)> &each,
                      std::string_view what) {
  return exchange(msg, &each, what);
}

Status Netlink::exchange(nlmsghdr *msg, const std::function<Status(const nlmsghdr *)> *each,
                         std::string_view what) {
  // A get also asks for an ack so the answer always ends (data + ack, or NLMSG_DONE for a dump).
  msg->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  msg->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(sock_, msg, msg->nlmsg_len) < 0)
    return failf_errno("{}: sending netlink request", what);

  Exchange x;
  x.each = each;
  mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
  ctl[NLMSG_ERROR] = on_error; // with a table, libmnl calls only what is in it
  ctl[NLMSG_DONE] = on_done;
  std::vector<char> buf(32768);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("{}: receiving netlink answer", what);
    }
    int ret = mnl_cb_run2(buf.data(), static_cast<size_t>(n), msg->nlmsg_seq, portid_, on_data, &x, ctl,
                          NLMSG_MIN_TYPE);
    if (ret == MNL_CB_ERROR || x.failed) {
      if (!x.failed)
        return failf_errno("{}: parsing netlink answer", what);
      if (x.error.message.empty())
        x.error.message = std::string(what);
      else
        x.error = with_context(std::move(x.error), std::string(what));
      return tl::unexpected<Error>(std::move(x.error));
    }
    if (ret == MNL_CB_STOP)
      return {};
  }
}

} // namespace bulkhead::net
