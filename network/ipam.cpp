#include "network/ipam.hpp"

#include <algorithm>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/file.h>

#include "bulkhead/io.hpp"

namespace bulkhead::net {
namespace {

Result<std::vector<Allocation>> load(const std::string &path, const Cidr &subnet) {
  std::vector<Allocation> out;
  if (::access(path.c_str(), F_OK) != 0)
    return out;
  auto text = BH_TRY(read_file(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j["subnet"].is_string() || !j["allocations"].is_array())
    return failf("IPAM record {} is corrupt", path);
  auto recorded = BH_TRY(Cidr::parse(j["subnet"].get<std::string>()));
  if (recorded.network() != subnet.network() || recorded.prefix != subnet.prefix)
    return failf("IPAM record {} is for subnet {}, not {}", path, recorded.str(), subnet.str());
  for (const auto &e : j["allocations"]) {
    if (!e.is_object() || !e["address"].is_string() || !e["owner"].is_string())
      return failf("IPAM record {} is corrupt", path);
    out.push_back({BH_TRY(IpAddress::parse(e["address"].get<std::string>())), e["owner"].get<std::string>()});
  }
  return out;
}

Status store(const std::string &path, const Cidr &subnet, const std::vector<Allocation> &all) {
  nlohmann::json j;
  j["subnet"] = Cidr{subnet.network(), subnet.prefix}.str();
  j["allocations"] = nlohmann::json::array();
  for (const auto &a : all)
    j["allocations"].push_back({{"address", a.address.str()}, {"owner", a.owner}});
  return write_file_durable(path, j.dump(1) + "\n", 0600);
}

} // namespace

Result<Ipam> Ipam::open(std::string state_path, Cidr subnet, std::vector<IpAddress> reserved) {
  for (const auto &r : reserved)
    if (r.family != subnet.family())
      return failf("reserved address {} is not in the family of {}", r.str(), subnet.str());
  if (subnet.max_prefix() - subnet.prefix < 2)
    return failf("subnet {} is too small to allocate from", subnet.str());
  Ipam ipam(std::move(state_path), subnet, std::move(reserved));
  BH_CHECK(ipam.list()); // refuses another subnet's or a corrupt record now
  return ipam;
}

// Runs fn(allocations) with the pool's lock held (flock on <record>.lock, released with the fd):
// load, change, store durably, all under one lock, so concurrent allocators serialize.
template <class F>
auto Ipam::locked(F &&fn) const -> decltype(fn(std::declval<std::vector<Allocation> &>())) {
  std::string lock = path_ + ".lock";
  UniqueFd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd)
    return failf_errno("opening IPAM lock {}", lock);
  while (::flock(fd.get(), LOCK_EX) < 0)
    if (errno != EINTR)
      return failf_errno("locking {}", lock);
  auto all = BH_TRY(load(path_, subnet_));
  return fn(all); // the lock goes with fd
}

Result<IpAddress> Ipam::allocate(std::string_view owner) {
  return locked([&](std::vector<Allocation> &all) -> Result<IpAddress> {
    std::set<IpAddress> taken(reserved_.begin(), reserved_.end());
    for (const auto &a : all)
      taken.insert(a.address);
    IpAddress first = subnet_.network().plus(1);
    IpAddress last = subnet_.last();
    // IPv4's last address is the broadcast; IPv6's last is usable.
    for (IpAddress a = first; subnet_.addr.is_v4() ? a < last : a <= last; a = a.plus(1)) {
      if (taken.count(a))
        continue;
      all.push_back({a, std::string(owner)});
      BH_CHECK(store(path_, subnet_, all));
      return a;
    }
    return failf("no free address left in {}", Cidr{subnet_.network(), subnet_.prefix}.str());
  });
}

Status Ipam::claim(const IpAddress &a, std::string_view owner) {
  std::string pool = Cidr{subnet_.network(), subnet_.prefix}.str();
  if (!subnet_.contains(a))
    return failf("address {} is outside the network {}", a.str(), pool);
  if (a == subnet_.network() || (a.is_v4() && a == subnet_.last()) ||
      std::find(reserved_.begin(), reserved_.end(), a) != reserved_.end())
    return failf("address {} is reserved in {}", a.str(), pool);
  return locked([&](std::vector<Allocation> &all) -> Status {
    for (const auto &e : all) {
      if (e.address != a)
        continue;
      if (e.owner == owner)
        return {};
      return failf("address {} is already taken in {} (by {})", a.str(), pool, e.owner);
    }
    all.push_back({a, std::string(owner)});
    return store(path_, subnet_, all);
  });
}

Status Ipam::release(const IpAddress &a) {
  return locked([&](std::vector<Allocation> &all) -> Status {
    auto n = std::erase_if(all, [&](const Allocation &e) { return e.address == a; });
    return n ? store(path_, subnet_, all) : Status{};
  });
}

Status Ipam::release_owner(std::string_view owner) {
  return locked([&](std::vector<Allocation> &all) -> Status {
    auto n = std::erase_if(all, [&](const Allocation &e) { return e.owner == owner; });
    return n ? store(path_, subnet_, all) : Status{};
  });
}

Result<std::vector<Allocation>> Ipam::list() const {
  return locked([](std::vector<Allocation> &all) -> Result<std::vector<Allocation>> { return all; });
}

} // namespace bulkhead::net
