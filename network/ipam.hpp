// A persistent address allocator for one subnet. The record (JSON) is rewritten with
// write_file_durable on every change under an flock, so two processes never hand out the same
// address and a crash at any instant leaves either the old or the new record: an address is only
// returned after its allocation is on disk (a crash after that leaks it to its owner, which the
// daemon reconciles with release_owner at start).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "network/ip.hpp"

namespace bulkhead::net {

struct Allocation {
  IpAddress address;
  std::string owner; // e.g. "container/web1/eth0"
};

class Ipam {
public:
  // state_path's directory must exist. reserved: never handed out (the bridge's own address);
  // the network address and, for IPv4, the broadcast address are never handed out either.
  // Reopening a record made for another subnet is refused.
  static Result<Ipam> open(std::string state_path, Cidr subnet, std::vector<IpAddress> reserved = {});

  Result<IpAddress> allocate(std::string_view owner); // the lowest free address
  // An explicit address: refused when outside the subnet, reserved, or held by another owner
  // (claiming it again for the same owner is a no-op, for idempotent re-adoption).
  Status claim(const IpAddress &a, std::string_view owner);
  Status release(const IpAddress &a); // not allocated is success
  Status release_owner(std::string_view owner);
  Result<std::vector<Allocation>> list() const;
  const Cidr &subnet() const { return subnet_; }

private:
  Ipam(std::string path, Cidr subnet, std::vector<IpAddress> reserved)
      : path_(std::move(path)), subnet_(subnet), reserved_(std::move(reserved)) {}
  template <class F> auto locked(F &&fn) const -> decltype(fn(std::declval<std::vector<Allocation> &>()));

  std::string path_;
  Cidr subnet_;
  std::vector<IpAddress> reserved_;
};

} // namespace bulkhead::net
