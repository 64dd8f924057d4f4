// Routed mode (OpenVZ venet / Incus routed NIC) built from the library's pieces: a container with a
// /32 and a /128 behind a host veth without a bridge, a link-local gateway, host routes, proxy ARP
// and proxy NDP on the uplink, forwarding on: a neighbour on the uplink reaches the container over
// IPv4 and IPv6, and tearing it down leaves nothing.
#include "helpers.hpp"

using namespace bulkhead::net;
using namespace bulkhead::net::test;

TEST(Routed, NeighbourOnTheUplinkReachesTheContainer) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root (network namespaces)";
  Space host = Space::make(), ct = Space::make(), neighbour = Space::make();

  // Uplink: host "bh-up" <-> neighbour "eth0", one shared subnet per family.
  auto up = create_veth(host.nl, "bh-up", "eth0", {}, &neighbour.ns);
  ASSERT_TRUE(up) << up.error().text();
  ASSERT_OK(set_up(host.nl, "bh-up", true));
  ASSERT_OK(set_up(neighbour.nl, "eth0", true));
  ASSERT_OK(add_address(host.nl, "bh-up", cidr("198.18.20.1/24")));
  ASSERT_OK(add_address(host.nl, "bh-up", cidr("fd00:20::1/64"), {true}));
  ASSERT_OK(add_address(neighbour.nl, "eth0", cidr("198.18.20.100/24")));
  ASSERT_OK(add_address(neighbour.nl, "eth0", cidr("fd00:20::100/64"), {true}));

  // The container's NIC: a veth whose host end has only link-local gateway addresses.
  auto nic = create_veth(host.nl, "bh-rt", "eth0", {}, &ct.ns);
  ASSERT_TRUE(nic) << nic.error().text();
  ASSERT_OK(set_up(host.nl, "bh-rt", true));
  ASSERT_OK(add_address(host.nl, "bh-rt", cidr("169.254.0.1/32")));
  ASSERT_OK(add_address(host.nl, "bh-rt", cidr("fe80::1/64"), {true}));
  ASSERT_OK(set_up(ct.nl, "eth0", true));
  ASSERT_OK(add_address(ct.nl, "eth0", cidr("198.18.20.5/32")));
  ASSERT_OK(add_address(ct.nl, "eth0", cidr("fd00:20::5/128"), {true}));
  ASSERT_OK(add_route(ct.nl, Route::default_via(ip("169.254.0.1"), "eth0", true)));
  ASSERT_OK(add_route(ct.nl, Route::default_via(ip("fe80::1"), "eth0")));

  // Host: routes to the container's addresses, forwarding, the uplink answering for them.
  ASSERT_OK(add_route(host.nl, Route::host(ip("198.18.20.5"), "bh-rt")));
  ASSERT_OK(add_route(host.nl, Route::host(ip("fd00:20::5"), "bh-rt")));
  ASSERT_OK(set_forwarding(host.ns, AF_INET, true));
  ASSERT_OK(set_forwarding(host.ns, AF_INET6, true));
  ASSERT_OK(set_proxy_arp(host.ns, "bh-up", true));
  ASSERT_OK(set_proxy_ndp(host.ns, "bh-up", true));
  ASSERT_OK(ensure_proxy_neighbour(host.nl, "bh-up", ip("fd00:20::5")));
  EXPECT_EQ(*read_sysctl(host.ns, "net/ipv4/conf/bh-up/proxy_arp"), "1");
  EXPECT_EQ(*read_sysctl(host.ns, "net/ipv6/conf/all/forwarding"), "1");
  // Written in host's netns only: the test process's own netns is untouched.
  EXPECT_EQ(*read_sysctl(ct.ns, "net/ipv6/conf/all/forwarding"), "0");

  auto routes = list_routes(host.nl, AF_INET);
  ASSERT_TRUE(routes) << routes.error().text();
  EXPECT_NE(std::find(routes->begin(), routes->end(), Route::host(ip("198.18.20.5"), "bh-rt")),
            routes->end());
  auto routes6 = list_routes(host.nl, AF_INET6);
  ASSERT_TRUE(routes6);
  bool found6 = false;
  for (const auto &r : *routes6)
    found6 |= r.dst == Cidr::host(ip("fd00:20::5")) && r.dev == "bh-rt";
  EXPECT_TRUE(found6);

  EXPECT_TRUE(udp_roundtrip(neighbour.ns, ct.ns, ip("198.18.20.5")));
  EXPECT_TRUE(udp_roundtrip(neighbour.ns, ct.ns, ip("fd00:20::5")));
  EXPECT_TRUE(udp_roundtrip(ct.ns, neighbour.ns, ip("fd00:20::100")));

  // Teardown in reverse; each step is checked.
  ASSERT_OK(delete_proxy_neighbour(host.nl, "bh-up", ip("fd00:20::5")));
  ASSERT_OK(delete_route(host.nl, Route::host(ip("198.18.20.5"), "bh-rt")));
  ASSERT_OK(delete_route(host.nl, Route::host(ip("fd00:20::5"), "bh-rt")));
  auto gone = delete_route(host.nl, Route::host(ip("198.18.20.5"), "bh-rt"));
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().text().find("198.18.20.5/32 dev bh-rt"), std::string::npos) << gone.error().text();
  ASSERT_OK(delete_address(host.nl, "bh-up", cidr("198.18.20.1/24")));
  { auto drop1 = std::move(*nic), drop2 = std::move(*up); }
  EXPECT_EQ(host.link_names(), std::vector<std::string>{"lo"});
  EXPECT_EQ(ct.link_names(), std::vector<std::string>{"lo"});
  EXPECT_EQ(neighbour.link_names(), std::vector<std::string>{"lo"});
}
