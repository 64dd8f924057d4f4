// Links on real rtnetlink inside private network namespaces: a bridge with two "containers" on
// veths (one moved in and renamed, one created straight inside), addresses and default routes on
// both sides, UDP across over IPv4 and IPv6, re-adoption checks, and nothing left afterwards.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.hpp"

using namespace bulkhead::net;
using namespace bulkhead::net::test;
using bulkhead::UniqueFd;

namespace {

using Links = RootOnly;

const LinkOptions kBridge{1400, "bulkhead:network/lan0"};

} // namespace

TEST_F(Links, BridgeVethTwoContainersTalkOverIpv4AndIpv6) {
  Space host = Space::make(), ct1 = Space::make(), ct2 = Space::make();

  auto br = ensure_bridge(host.nl, "bh-lan0", kBridge);
  ASSERT_TRUE(br) << br.error().text();
  EXPECT_EQ(br->kind, "bridge");
  EXPECT_EQ(br->mtu, 1400u);
  EXPECT_TRUE(br->up);
  ASSERT_OK(ensure_address(host.nl, "bh-lan0", cidr("198.18.10.1/24"), {true}));
  ASSERT_OK(ensure_address(host.nl, "bh-lan0", cidr("fd00:10::1/64"), {true}));

  // Container 1: veth made in the host netns, one end moved into ct1 and renamed eth0 on the way.
  auto v1 = create_veth(host.nl, "bhv-ct1", "bhc-ct1", {1400, "bulkhead:nic/ct1/eth0"});
  ASSERT_TRUE(v1) << v1.error().text();
  ASSERT_OK(set_master(host.nl, "bhv-ct1", "bh-lan0"));
  ASSERT_OK(set_up(host.nl, "bhv-ct1", true));
  ASSERT_OK(move_link(host.nl, "bhc-ct1", ct1.ns, "eth0"));
  EXPECT_FALSE(*find_link(host.nl, "bhc-ct1"));
  auto eth0 = get_link(ct1.nl, "eth0");
  ASSERT_TRUE(eth0) << eth0.error().text();
  EXPECT_EQ(eth0->mtu, 1400u);
  EXPECT_EQ(get_link(host.nl, "bhv-ct1")->master, br->index);

  // Container 2: the peer is created directly inside ct2 under its final name.
  auto v2 = create_veth(host.nl, "bhv-ct2", "eth0", {1400, {}}, &ct2.ns);
  ASSERT_TRUE(v2) << v2.error().text();
  ASSERT_OK(set_master(host.nl, "bhv-ct2", "bh-lan0"));
  ASSERT_OK(set_up(host.nl, "bhv-ct2", true));

  struct Ct {
    Space &s;
    const char *v4, *v6;
  };
  for (Ct c : {Ct{ct1, "198.18.10.2/24", "fd00:10::2/64"}, Ct{ct2, "198.18.10.3/24", "fd00:10::3/64"}}) {
    ASSERT_OK(set_up(c.s.nl, "eth0", true));
    ASSERT_OK(add_address(c.s.nl, "eth0", cidr(c.v4), {true}));
    ASSERT_OK(add_address(c.s.nl, "eth0", cidr(c.v6), {true}));
    ASSERT_OK(add_route(c.s.nl, Route::default_via(ip("198.18.10.1"))));
    ASSERT_OK(add_route(c.s.nl, Route::default_via(ip("fd00:10::1"))));
  }

  // What the kernel now reports.
  auto addrs = list_addresses(ct1.nl, "eth0");
  ASSERT_TRUE(addrs) << addrs.error().text();
  std::vector<std::string> seen;
  for (const auto &a : *addrs)
    seen.push_back(a.cidr.str());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "198.18.10.2/24"), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "fd00:10::2/64"), seen.end());
  for (int family : {AF_INET, AF_INET6}) {
    auto routes = list_routes(ct1.nl, family);
    ASSERT_TRUE(routes) << routes.error().text();
    auto def = std::find_if(routes->begin(), routes->end(), [](const Route &r) { return r.dst.prefix == 0; });
    ASSERT_NE(def, routes->end()) << "no default route for family " << family;
    EXPECT_EQ(def->gateway->str(), family == AF_INET ? "198.18.10.1" : "fd00:10::1");
    EXPECT_EQ(def->dev, "eth0");
  }
  // A duplicate add is EEXIST and names the route; ensure_route is idempotent.
  auto dup = add_route(ct1.nl, Route::default_via(ip("198.18.10.1")));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, EEXIST);
  EXPECT_NE(dup.error().text().find("default via 198.18.10.1"), std::string::npos) << dup.error().text();
  ASSERT_OK(ensure_route(ct1.nl, Route::default_via(ip("198.18.10.1"))));

  // Traffic: container to container across the bridge, and to the host-side address.
  EXPECT_TRUE(udp_roundtrip(ct1.ns, ct2.ns, ip("198.18.10.3")));
  EXPECT_TRUE(udp_roundtrip(ct2.ns, ct1.ns, ip("fd00:10::2")));
  EXPECT_TRUE(udp_roundtrip(ct1.ns, host.ns, ip("198.18.10.1")));
  EXPECT_TRUE(udp_roundtrip(ct2.ns, host.ns, ip("fd00:10::1")));

  // Re-adoption: the same bridge is adopted, a foreign one or a non-bridge is refused by name.
  auto again = ensure_bridge(host.nl, "bh-lan0", kBridge);
  ASSERT_TRUE(again) << again.error().text();
  EXPECT_EQ(again->index, br->index);
  auto foreign = ensure_bridge(host.nl, "bh-lan0", {1400, "bulkhead:network/other"});
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().text().find("bh-lan0 exists and is not ours"), std::string::npos);
  auto notbridge = ensure_bridge(host.nl, "bhv-ct1", kBridge);
  ASSERT_FALSE(notbridge);
  EXPECT_NE(notbridge.error().text().find("not a bridge"), std::string::npos);
  auto taken = create_bridge(host.nl, "bh-lan0");
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, EEXIST);
  EXPECT_NE(taken.error().text().find("bh-lan0"), std::string::npos);

  // Teardown: the guards delete the veths (and so their peers in the containers), then the bridge.
  { auto drop1 = std::move(*v1), drop2 = std::move(*v2); }
  ASSERT_OK(delete_link(host.nl, "bh-lan0"));
  EXPECT_EQ(host.link_names(), std::vector<std::string>{"lo"});
  EXPECT_EQ(ct1.link_names(), std::vector<std::string>{"lo"});
  EXPECT_EQ(ct2.link_names(), std::vector<std::string>{"lo"});
  ASSERT_OK(ensure_link_absent(host.nl, "bh-lan0"));
}

TEST_F(Links, MtuRenameDetachAndErrorsNameTheDevice) {
  Space host = Space::make();
  auto br = create_bridge(host.nl, "bh-br");
  ASSERT_TRUE(br) << br.error().text();
  auto v = create_veth(host.nl, "bh-a", "bh-b");
  ASSERT_TRUE(v) << v.error().text();
  ASSERT_OK(set_mtu(host.nl, "bh-a", 1280));
  EXPECT_EQ(get_link(host.nl, "bh-a")->mtu, 1280u);
  ASSERT_OK(set_master(host.nl, "bh-a", "bh-br"));
  EXPECT_EQ(get_link(host.nl, "bh-a")->master, br->index());
  ASSERT_OK(set_master(host.nl, "bh-a", ""));
  EXPECT_EQ(get_link(host.nl, "bh-a")->master, 0);
  ASSERT_OK(set_up(host.nl, "bh-a", true));
  EXPECT_TRUE(get_link(host.nl, "bh-a")->up);
  ASSERT_OK(set_up(host.nl, "bh-a", false));
  ASSERT_OK(rename_link(host.nl, "bh-a", "bh-renamed"));
  EXPECT_FALSE(*find_link(host.nl, "bh-a"));
  EXPECT_EQ(get_link(host.nl, "bh-renamed")->index, v->index());
  ASSERT_OK(set_alias(host.nl, "bh-renamed", "bulkhead:test"));
  EXPECT_EQ(get_link(host.nl, "bh-renamed")->alias, "bulkhead:test");

  auto missing = set_mtu(host.nl, "bh-nope", 1400);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENODEV);
  EXPECT_NE(missing.error().text().find("bh-nope"), std::string::npos) << missing.error().text();
  auto nomaster = set_master(host.nl, "bh-renamed", "bh-nobridge");
  ASSERT_FALSE(nomaster);
  EXPECT_NE(nomaster.error().text().find("bh-nobridge"), std::string::npos);
  // The kernel's extended ack comes through: too small an MTU.
  auto tiny = set_mtu(host.nl, "bh-renamed", 10);
  ASSERT_FALSE(tiny);
  EXPECT_NE(tiny.error().text().find("setting MTU 10 on bh-renamed"), std::string::npos);
  std::cout << "  kernel said: " << tiny.error().text() << "\n";

  { auto drop1 = std::move(*v), drop2 = std::move(*br); }
  EXPECT_EQ(host.link_names(), std::vector<std::string>{"lo"});
}

TEST_F(Links, MovesIntoTheNetnsOfAProcessByPidfd) {
  Space host = Space::make();
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNET) < 0)
      _exit(1);
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    _exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  ASSERT_TRUE(pidfd.valid()) << std::strerror(errno);
  auto target = Netns::of_pidfd(pidfd.get());
  ASSERT_TRUE(target) << target.error().text();
  {
    auto v = create_veth(host.nl, "bh-x", "bh-y");
    ASSERT_TRUE(v) << v.error().text();
    ASSERT_OK(move_link(host.nl, "bh-y", *target, "eth7"));
    auto inside = Netlink::open(*target);
    ASSERT_TRUE(inside) << inside.error().text();
    EXPECT_TRUE(get_link(*inside, "eth7"));
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(host.link_names(), std::vector<std::string>{"lo"});
}
