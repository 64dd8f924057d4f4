// NAT on managed networks (issue 12 item 1, `network create --nat [--uplink]`): the daemon runs in a
// private network namespace (DaemonTest::use_private_netns), and the test reads the kernel's
// nf_tables ruleset there through libnftables itself (not through the daemon's code), on a thread
// that joins that netns.
#include <iostream>

#include "nat_fixture.hpp"

namespace {

using bh_test::contains;
using bh_test::DaemonNatTest;
using bh_test::json;

TEST_F(DaemonNatTest, NatTableFollowsTheNetworkAcrossRestartAndRm) {
  start_daemon();
  ASSERT_EQ(nft("list tables"), std::optional<std::string>("")) << "the fresh netns has no tables";
  auto r =
      ctl({"network", "create", "wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat", "--uplink", "up0"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"network", "create", "lan-2", "--bridge", "--ipv4", "198.18.78.1/24", "--nat"});
  ASSERT_TRUE(r.ok()) << r;
  auto wan = nft("list table ip bulkhead_wan0");
  ASSERT_TRUE(wan) << "no table bulkhead_wan0";
  EXPECT_TRUE(contains(*wan, "type nat hook postrouting priority srcnat; policy accept;")) << *wan;
  EXPECT_TRUE(contains(*wan, "ip saddr 198.18.77.0/24 ip daddr != 198.18.77.0/24 oifname \"up0\" masquerade"))
      << *wan;
  auto lan = nft("list table ip bulkhead_lan_2");
  ASSERT_TRUE(lan) << "no table bulkhead_lan_2";
  EXPECT_TRUE(
      contains(*lan, "ip saddr 198.18.78.0/24 ip daddr != 198.18.78.0/24 oifname != \"bh-lan-2\" masquerade"))
      << *lan;
  EXPECT_EQ(ip_forward(), "1\n");
  auto h = http("GET", "/1.0/networks/wan0");
  EXPECT_EQ(h.body["nat"], true);
  EXPECT_EQ(h.body["uplink"], "up0");

  // SIGKILL + restart: the table is rebuilt in one transaction (same rules, still one table each).
  kill_daemon();
  start_daemon();
  EXPECT_EQ(nft("list table ip bulkhead_wan0"), wan);
  EXPECT_EQ(nft("list table ip bulkhead_lan_2"), lan);
  auto tables = nft("list tables");
  ASSERT_TRUE(tables);
  // In the order the records were replayed; exactly one of each.
  EXPECT_EQ(bh_test::split_lines(*tables).size(), 2u) << *tables;
  EXPECT_TRUE(contains(*tables, "table ip bulkhead_wan0\n")) << *tables;
  EXPECT_TRUE(contains(*tables, "table ip bulkhead_lan_2\n")) << *tables;

  ASSERT_TRUE(ctl({"network", "rm", "wan0"}).ok());
  EXPECT_FALSE(nft("list table ip bulkhead_wan0"));
  EXPECT_TRUE(nft("list table ip bulkhead_lan_2"));
  ASSERT_TRUE(ctl({"network", "rm", "lan-2"}).ok());
  EXPECT_EQ(nft("list tables"), std::optional<std::string>(""));
}

TEST_F(DaemonNatTest, BadNatRequestsAreClearErrorsAndLeaveNothing) {
  start_daemon();
  std::string before = ip_in_netns({"-o", "link"}).out;
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"wan0", "--bridge", "--nat"}, "network wan0: --nat masquerades IPv4 and needs --ipv4"},
      {{"wan0", "--bridge", "--ipv6", "fd42:77::1/64", "--nat"}, "needs --ipv4"},
      {{"wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--uplink", "up0"},
       "network wan0: an uplink is for a routed network or a NATed one (--nat)"},
      {{"wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat", "--uplink", "up0\" accept"},
       "network wan0: uplink 'up0\" accept': only A-Z, a-z, 0-9, '.', '-' and '_'"},
      {{"wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat", "--uplink", "a-very-long-uplink"},
       "network wan0: uplink 'a-very-long-uplink': an interface name of 1 to 15 characters"},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = {"network", "create"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.error)) << r;
  }
  auto h = http("POST", "/1.0/networks",
                json{{"name", "wan0"}, {"ipv4", "198.18.77.1/24"}, {"nat", "yes"}}.dump());
  EXPECT_EQ(h.status, 400);
  EXPECT_EQ(nft("list tables"), std::optional<std::string>(""));
  EXPECT_EQ(ip_in_netns({"-o", "link"}).out, before);
  EXPECT_EQ(ctl({"network", "list", "--json"}).out, "[]\n");
}

// A "neighbour" netns on the uplink veth up0 (198.18.0.1/30 <-> 198.18.0.2/30) with no route back
// to the container's subnet: a container's TCP connection to it only gets an answer when it is
// masqueraded, and the neighbour's netstat (run by nc for the connection) names the uplink address
// as the peer.
TEST_F(DaemonNatTest, ContainerReachesANeighbourThroughTheUplinkAcrossADaemonRestart) {
  make_neighbour();
  auto in_nb = [&](std::vector<std::string> argv) { return in_neighbour(std::move(argv)); };
  start_daemon();
  import_busybox();
  ASSERT_TRUE(
      ctl({"network", "create", "wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat", "--uplink", "up0"})
          .ok());
  auto r = ctl({"create", "c1", "--template", "busybox", "--net", "wan0", "--start"});
  ASSERT_TRUE(r.ok()) << r;

  auto reaches = [&](const std::string &where) {
    // One listener per round; the container retries until it is listening (no timing assumed).
    std::thread listener([&] {
      in_nb({"busybox", "nc", "-l", "-p", "9000", "-e", "busybox", "netstat", "-tn"});
    });
    bh_test::CommandResult seen;
    for (int i = 0; i < 100 && !contains(seen.out, ":9000"); ++i)
      seen = ctl({"exec", "c1", "--", "nc", "-w", "3", "198.18.0.2", "9000"});
    listener.join();
    EXPECT_TRUE(contains(seen.out, "198.18.0.2:9000")) << where << ": " << seen;
    EXPECT_TRUE(contains(seen.out, "198.18.0.1:")) << where << ": the peer is the uplink address: " << seen;
    EXPECT_FALSE(contains(seen.out, "198.18.77.")) << where << ": " << seen;
    for (const auto &line : bh_test::split_lines(seen.out))
      if (contains(line, "198.18.0.2:9000"))
        std::cout << where << ": the neighbour's netstat: " << line << "\n";
  };
  reaches("after create");
  kill_daemon();
  start_daemon();
  reaches("after SIGKILL and restart of bulkheadd");

  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "wan0"}).ok());
  EXPECT_EQ(nft("list tables"), std::optional<std::string>(""));
  EXPECT_FALSE(contains(ip_in_netns({"-o", "link"}).out, "bh-")) << ip_in_netns({"-o", "link"});
  EXPECT_EQ(ip_in_netns({"route", "show"}).out,
            "198.18.0.0/30 dev up0 proto kernel scope link src 198.18.0.1 \n");
  remove_neighbour();
}

} // namespace
