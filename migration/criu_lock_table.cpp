#include "migration/criu_lock_table.hpp"
#include "migration/criu_netns.hpp"

// glibc's <netinet/in.h> (through arpa/inet.h) before the kernel's headers, which then leave
// struct in_addr to it.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::migration {

namespace {

constexpr std::string_view kTablePrefix = "table inet CRIU-";

bool is_lock_table_name(std::string_view digits) {
  if (digits.empty() || digits.size() > 10)
    return false;
  for (char c : digits)
    if (c < '0' || c > '9')
      return false;
  return true;
}

// Appends the names of `table inet CRIU-<digits> {` lines of nft's text.
void collect_names(std::string_view text, std::vector<std::string> &names) {
  for (size_t at = text.find(kTablePrefix); at != std::string_view::npos;
       at = text.find(kTablePrefix, at + 1)) {
    if (at != 0 && text[at - 1] != '\n')
      continue;
    size_t start = at + kTablePrefix.size();
    size_t end = text.find_first_of(" \n", start);
    std::string_view digits = text.substr(start, end == std::string_view::npos ? end : end - start);
    std::string name = fmt::format("CRIU-{}", digits);
    if (is_lock_table_name(digits) && std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
  }
}

// One netlink message under construction: header, nfgenmsg, attributes, 4-byte aligned.
class NfMessage {
public:
  NfMessage(uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id, uint32_t seq) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    nfgenmsg g{};
    g.nfgen_family = family;
    g.version = NFNETLINK_V0;
    g.res_id = htons(res_id);
    append(&h, sizeof h);
    append(&g, sizeof g);
  }
  void string_attr(uint16_t type, const std::string &value) {
    nlattr a{};
    a.nla_type = type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + value.size() + 1);
    append(&a, sizeof a);
    append(value.c_str(), value.size() + 1);
  }
  // The message with its length set, ready to be appended to a batch.
  const std::string &done() {
    uint32_t len = static_cast<uint32_t>(bytes_.size());
    std::memcpy(bytes_.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
    return bytes_;
  }

private:
  void append(const void *p, size_t n) {
    bytes_.append(static_cast<const char *>(p), n);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), '\0');
  }
  std::string bytes_;
};

// One transaction (batch begin, DELTABLE with an ack, batch end) per table: a table already gone
// fails only its own. The kernel's answer 0 or ENOENT is success; any other errno is the error.
Status delete_one(int sock, const std::string &name, uint32_t seq) {
  std::string batch =
      NfMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq).done();
  NfMessage del((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, NLM_F_REQUEST | NLM_F_ACK, NFPROTO_INET, 0,
                seq + 1);
  del.string_attr(NFTA_TABLE_NAME, name);
  batch += del.done();
  batch += NfMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq + 2).done();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(sock, batch.data(), batch.size(), 0, reinterpret_cast<sockaddr *>(&kernel), sizeof kernel) !=
      static_cast<ssize_t>(batch.size()))
    return failf_errno("sending nf_tables the deletion of table inet {}", name);
  alignas(nlmsghdr) char buf[8192];
  for (;;) {
    ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    if (n < 0)
      return failf_errno("reading nf_tables' answer to deleting table inet {}", name);
    int left = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != seq + 1)
        continue;
      int err = -static_cast<const nlmsgerr *>(NLMSG_DATA(h))->error;
      if (err != 0 && err != ENOENT)
        return fail(fmt::format("deleting nftables table inet {}", name), err);
      return {};
    }
  }
}

} // namespace

std::vector<std::string> criu_lock_tables(int images_dir) {
  std::vector<std::string> names;
  int copy = ::fcntl(images_dir, F_DUPFD_CLOEXEC, 0);
  if (copy < 0)
    return names;
  std::unique_ptr<DIR, int (*)(DIR *)> dir(::fdopendir(copy), ::closedir);
  if (!dir) {
    ::close(copy);
    return names;
  }
  while (const dirent *d = ::readdir(dir.get())) {
    std::string_view name(d->d_name);
    if (!name.starts_with("nftables-") || !name.ends_with(".img"))
      continue;
    UniqueFd fd(::openat(images_dir, d->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
      continue;
    if (auto text = read_fd(fd.get(), d->d_name))
      collect_names(*text, names);
  }
  return names;
}

Status delete_inet_tables(int netns, const std::vector<std::string> &names) {
  if (names.empty())
    return {};
  UniqueFd sock = BH_TRY(socket_in_netns(netns, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  timeval timeout{5, 0}; // the kernel answers at once; never hang a restore on it
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  uint32_t seq = 1;
  for (const auto &name : names) {
    BH_CHECK(delete_one(sock.get(), name, seq));
    seq += 3;
  }
  return {};
}

} // namespace bulkhead::migration
