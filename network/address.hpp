// Interface addresses (RTM_NEWADDR / RTM_DELADDR / dump), IPv4 and IPv6.
#pragma once

#include <vector>

#include "network/ip.hpp"
#include "network/netlink.hpp"

namespace bulkhead::net {

struct AddressOptions {
  bool nodad = false; // IPv6: IFA_F_NODAD, usable at once (static addresses the IPAM handed out)
};

struct AddressEntry {
  int index = 0; // link
  Cidr cidr;
};

// Fails with EEXIST when the address is already there; ensure_address replaces instead.
Status add_address(Netlink &nl, std::string_view dev, const Cidr &cidr, const AddressOptions &opts = {});
Status ensure_address(Netlink &nl, std::string_view dev, const Cidr &cidr, const AddressOptions &opts = {});
Status delete_address(Netlink &nl, std::string_view dev, const Cidr &cidr);
// All addresses of dev ("" for every link) of a family (AF_UNSPEC for both).
Result<std::vector<AddressEntry>> list_addresses(Netlink &nl, std::string_view dev = {},
                                                 int family = AF_UNSPEC);

} // namespace bulkhead::net
