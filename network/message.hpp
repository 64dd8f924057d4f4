// Private: a netlink request under construction (a buffer plus libmnl's attribute helpers), and
// attribute tables for parsing replies.
#pragma once

#include <array>
#include <cstring>
#include <libmnl/libmnl.h>
#include <string_view>
#include <vector>

namespace bulkhead::net {

class Message {
public:
  Message(uint16_t type, uint16_t flags) : buf_(kSize) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
  }
  Message(const Message &) = delete;
  Message &operator=(const Message &) = delete;

  nlmsghdr *hdr() { return nlh_; }
  // The fixed family header (ifinfomsg, ifaddrmsg, rtmsg, tcmsg, ...), zeroed; also used for the
  // ifinfomsg a veth peer carries inside VETH_INFO_PEER.
  template <class T> T *put_struct() { return static_cast<T *>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T))); }
  void put(uint16_t type, const void *data, size_t len) { mnl_attr_put(nlh_, type, len, data); }
  template <class T> void put_value(uint16_t type, const T &v) { put(type, &v, sizeof v); }
  void put_u8(uint16_t type, uint8_t v) { mnl_attr_put_u8(nlh_, type, v); }
  void put_u32(uint16_t type, uint32_t v) { mnl_attr_put_u32(nlh_, type, v); }
  void put_str(uint16_t type, std::string_view s) {
    std::string z(s);
    mnl_attr_put_strz(nlh_, type, z.c_str());
  }
  nlattr *nest(uint16_t type) { return mnl_attr_nest_start(nlh_, type); }
  void end(nlattr *nest) { mnl_attr_nest_end(nlh_, nest); }

private:
  static constexpr size_t kSize = 8192;
  std::vector<char> buf_;
  nlmsghdr *nlh_;
};

// Attributes of a message (after a fixed header of hdr_len bytes) or of a nest, by type.
template <size_t N> struct Attrs {
  std::array<const nlattr *, N + 1> at{};

  void parse_msg(const nlmsghdr *nlh, size_t hdr_len) {
    mnl_attr_parse(nlh, static_cast<unsigned>(hdr_len), &Attrs::store, this);
  }
  void parse_nested(const nlattr *nest) { mnl_attr_parse_nested(nest, &Attrs::store, this); }
  const nlattr *operator[](size_t t) const { return t <= N ? at[t] : nullptr; }
  uint32_t u32(size_t t, uint32_t dflt = 0) const { return at[t] ? mnl_attr_get_u32(at[t]) : dflt; }
  std::string str(size_t t) const {
    if (!at[t])
      return {};
    const char *p = static_cast<const char *>(mnl_attr_get_payload(at[t]));
    return std::string(p, strnlen(p, mnl_attr_get_payload_len(at[t])));
  }

private:
  static int store(const nlattr *a, void *data) {
    auto *self = static_cast<Attrs *>(data);
    uint16_t t = mnl_attr_get_type(a);
    if (t <= N)
      self->at[t] = a;
    return MNL_CB_OK;
  }
};

} // namespace bulkhead::net
