// Links over rtnetlink: bridges, veth pairs, IFBs; MTU, up/down, rename, bridge port, netns moves,
// delete; lookups by name/index for re-adoption. Every call acts in the netns of the Netlink given.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "network/netlink.hpp"

namespace bulkhead::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "veth", "ifb"; empty for lo and real NICs
  std::string alias; // IFLA_IFALIAS, the daemon's ownership mark ("bulkhead:network/lan0")
  unsigned mtu = 0;
  bool up = false;
  int master = 0;  // index of the bridge this link is a port of, 0 for none
  std::string mac; // IFLA_ADDRESS as "aa:bb:cc:dd:ee:ff"; empty when the link has none
};

struct LinkOptions {
  unsigned mtu = 0;  // 0: kernel default
  std::string alias; // empty: none
};

Result<std::optional<LinkInfo>> find_link(Netlink &nl, std::string_view name);
Result<LinkInfo> get_link(Netlink &nl, std::string_view name); // ENODEV error naming it if absent
Result<LinkInfo> get_link(Netlink &nl, int index);
Result<std::vector<LinkInfo>> list_links(Netlink &nl);

// Deletes a link it was given (by index, so a later rename does not lose it) when destroyed,
// unless release()d: creators hand one back so a failed multi-step setup leaves no link behind.
// Must not outlive its Netlink. Deleting a veth end deletes its peer too.
class [[nodiscard]] LinkGuard {
public:
  LinkGuard(Netlink &nl, int index, std::string name) : nl_(&nl), index_(index), name_(std::move(name)) {}
  LinkGuard(LinkGuard &&o) noexcept
      : nl_(std::exchange(o.nl_, nullptr)), index_(o.index_), name_(std::move(o.name_)) {}
  LinkGuard &operator=(LinkGuard &&) = delete;
  LinkGuard(const LinkGuard &) = delete;
  ~LinkGuard();
  int index() const { return index_; }
  const std::string &name() const { return name_; }
  void release() { nl_ = nullptr; }

private:
  Netlink *nl_;
  int index_;
  std::string name_;
};

// Creation fails with EEXIST when the name is taken (NLM_F_EXCL); the ensure_* calls adopt.
Result<LinkGuard> create_bridge(Netlink &nl, std::string_view name, const LinkOptions &opts = {});
Result<LinkGuard> create_ifb(Netlink &nl, std::string_view name, const LinkOptions &opts = {});
// A veth pair; with peer_ns the peer end is created directly in that netns (its name only has to
// be free there, so it can already be "eth0"). The guard holds the first end.
Result<LinkGuard> create_veth(Netlink &nl, std::string_view name, std::string_view peer,
                              const LinkOptions &opts = {}, const Netns *peer_ns = nullptr);

Status set_mtu(Netlink &nl, std::string_view name, unsigned mtu);
Status set_up(Netlink &nl, std::string_view name, bool up);
Status set_alias(Netlink &nl, std::string_view name, std::string_view alias);
// IFLA_ADDRESS from "aa:bb:cc:dd:ee:ff" (a malformed text is EINVAL naming it).
Status set_mac(Netlink &nl, std::string_view name, std::string_view mac);
// "aa:bb:cc:dd:ee:ff" (exactly) -> its 6 bytes.
Result<std::array<uint8_t, 6>> parse_mac(std::string_view mac);
// The kernel refuses to rename a link that is up (EBUSY): take it down first.
Status rename_link(Netlink &nl, std::string_view name, std::string_view new_name);
// IFLA_MASTER: make name a port of bridge ("" detaches it).
Status set_master(Netlink &nl, std::string_view name, std::string_view bridge);
// IFLA_NET_NS_FD; with new_name the link is renamed as it moves (the name must be free there).
Status move_link(Netlink &nl, std::string_view name, const Netns &target, std::string_view new_name = {});
Status delete_link(Netlink &nl, std::string_view name);
Status delete_link(Netlink &nl, int index);
// Idempotent teardown: absent is success.
Status ensure_link_absent(Netlink &nl, std::string_view name);

// Re-adoption after a restart: returns the existing bridge when it is a bridge carrying opts.alias
// (refused otherwise: "exists and is not ours"), or creates it. Either way it ends up up.
Result<LinkInfo> ensure_bridge(Netlink &nl, std::string_view name, const LinkOptions &opts);

} // namespace bulkhead::net
