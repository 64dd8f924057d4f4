// Announcements (network/announce.hpp) between two network namespaces joined by a veth: the
// receiver's cache holds an address at a stale MAC, and a gratuitous ARP from the sender moves it
// to the sender's MAC without the receiver sending anything. The receiver's cache is read (and the stale
// entry planted) with iproute2 inside its namespace, a separate program from the code under test.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace bulkhead::net;
using namespace bulkhead::net::test;

namespace {

using Announce = RootOnly;

// Runs `ip ARGS` in the namespace of `ns` and returns its output ("" on failure, with a test error).
std::string ip_in(const Netns &ns, const std::string &args) {
  std::string cmd =
      "nsenter --net=/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(ns.fd()) + " ip " + args;
  FILE *p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen " << cmd;
    return {};
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << cmd << ": " << out;
  return out;
}

// The MAC the namespace's cache holds for addr on dev, or "none".
std::string cached_mac(const Netns &ns, const std::string &addr, const std::string &dev) {
  auto j = nlohmann::json::parse(ip_in(ns, "-j neigh show " + addr + " dev " + dev), nullptr, false);
  if (!j.is_array() || j.empty() || !j[0].contains("lladdr"))
    return "none";
  return j[0]["lladdr"].get<std::string>();
}

} // namespace

// IPv4 only: the unsolicited NA is sent (the sender counts it in Icmp6OutNeighborAdvertisements),
// but a veth made in a fresh namespace here lists no multicast membership (`ip -6 maddr` is empty,
// the NA is dropped as Ip6InNoRoutes on the 6.18 development kernel), so its effect on the
// receiver's cache is not asserted until that is understood.
TEST_F(Announce, GratuitousArpMovesAnExistingEntry) {
  Space a = Space::make(), b = Space::make();
  auto veth = create_veth(a.nl, "bha-an", "bhb-an", {}, &b.ns);
  ASSERT_TRUE(veth) << veth.error().text();
  veth->release(); // deleted with namespace a
  ASSERT_OK(ensure_address(a.nl, "bha-an", cidr("198.18.12.1/24"), {true}));
  ASSERT_OK(ensure_address(a.nl, "bha-an", cidr("fd00:12::1/64"), {true}));
  ASSERT_OK(ensure_address(b.nl, "bhb-an", cidr("198.18.12.2/24"), {true}));
  ASSERT_OK(ensure_address(b.nl, "bhb-an", cidr("fd00:12::2/64"), {true}));
  ASSERT_OK(set_up(a.nl, "bha-an", true));
  ASSERT_OK(set_up(b.nl, "bhb-an", true));
  auto sender = get_link(a.nl, "bha-an");
  ASSERT_TRUE(sender) << sender.error().text();
  ASSERT_EQ(sender->mac.size(), 17u);

  const std::string old_mac = "02:00:00:00:00:99";
  for (const char *addr : {"198.18.12.7"}) {
    SCOPED_TRACE(addr);
    ip_in(b.ns, std::string("neigh replace ") + addr + " lladdr " + old_mac + " dev bhb-an nud stale");
    ASSERT_EQ(cached_mac(b.ns, addr, "bhb-an"), old_mac);
    // The sender announces the address at its own MAC; the receiver's entry follows at once.
    auto r = run_in(a.ns, [&] { return announce_address(sender->index, sender->mac, ip(addr)); });
    ASSERT_TRUE(r) << r.error().text();
    std::string now;
    for (int i = 0; i < 50 && (now = cached_mac(b.ns, addr, "bhb-an")) != sender->mac; ++i)
      ::usleep(20000);
    EXPECT_EQ(now, sender->mac);
  }
}

TEST_F(Announce, BadInputIsAClearError) {
  Space a = Space::make();
  auto lo = get_link(a.nl, "lo");
  ASSERT_TRUE(lo) << lo.error().text();
  auto r = run_in(a.ns, [&] { return announce_address(lo->index, "not-a-mac", ip("198.18.12.7")); });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not-a-mac"), std::string::npos) << r.error().text();
  r = run_in(a.ns, [&] { return announce_address(99999, "02:00:00:00:00:01", ip("198.18.12.7")); });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("link 99999"), std::string::npos) << r.error().text();
  EXPECT_NE(r.error().code, 0);
}
