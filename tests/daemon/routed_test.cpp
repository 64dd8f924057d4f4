// Routed NICs, bandwidth caps, stable MACs and NIC re-adoption in bulkheadd (issue 12 item 1): the
// daemon runs in a network namespace of the test's own (an uplink veth is made there), addresses
// from 198.18.0.0/15 and fd00::/8. Reachability from a neighbour and measured rates: the VM
// scenario tests/daemon/vm-network.sh.
#include <gtest/gtest.h>

#include "daemon_fixture.hpp"

namespace {

using bh_test::contains;
using bh_test::json;

class DaemonRoutedTest : public bh_test::DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    use_private_netns();
    // The uplink: one end of a veth pair (the other end stays unused here) with the host's address.
    ASSERT_TRUE(ip_in_netns({"link", "add", "up0", "type", "veth", "peer", "name", "nb0"}).ok());
    ASSERT_TRUE(ip_in_netns({"link", "set", "up0", "up"}).ok());
    ASSERT_TRUE(ip_in_netns({"link", "set", "nb0", "up"}).ok());
    ASSERT_TRUE(ip_in_netns({"addr", "add", "198.18.30.1/24", "dev", "up0"}).ok());
    ASSERT_TRUE(ip_in_netns({"addr", "add", "fd00:30::1/64", "dev", "up0", "nodad"}).ok());
  }
  std::string ip(const std::vector<std::string> &args) {
    auto r = ip_in_netns(args);
    EXPECT_TRUE(r.ok()) << r;
    return r.out;
  }
  std::string tc(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {"nsenter", "--net=" + netns_path(), "tc"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = bh_test::run_command(argv);
    EXPECT_TRUE(r.ok()) << r;
    return r.out;
  }
  // Everything a NIC may leave in the daemon's netns.
  std::string state() {
    return ip({"-o", "link"}) + ip({"-4", "route"}) + ip({"-6", "route"}) +
           ip({"-6", "neigh", "show", "proxy"}) + tc({"qdisc"});
  }
};

TEST_F(DaemonRoutedTest, RoutedNicCapsReadoptionAndTeardown) {
  start_daemon();
  import_busybox();
  std::string before = state();
  auto r = ctl({"network", "create", "wan", "--routed", "--uplink", "up0", "--ipv4", "198.18.30.64/26",
                "--ipv6", "fd00:30::100/120"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "created network wan (routed on up0)\n");
  r = ctl({"network", "list"});
  EXPECT_TRUE(contains(r.out, "wan   routed:up0  198.18.30.64/26  fd00:30::100/120")) << r;

  r = ctl({"create", "r1", "--template", "busybox", "--net", "wan,ingress=20mbit,egress=10mbit", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"create", "r2", "--template", "busybox", "--net", "wan:ipv4=198.18.30.70,ipv6=fd00:30::170",
           "--start"});
  ASSERT_TRUE(r.ok()) << r;
  auto i1 = info("r1");
  ASSERT_EQ(i1["nics"].size(), 1u) << i1.dump();
  EXPECT_EQ(i1["nics"][0]["ipv4"], "198.18.30.65/32");
  EXPECT_EQ(i1["nics"][0]["ipv6"], "fd00:30::101/128");
  EXPECT_EQ(i1["nics"][0]["ingress"], "20mbit");
  EXPECT_EQ(i1["nics"][0]["egress"], "10mbit");
  std::string mac = i1["nics"][0]["mac"].get<std::string>();
  ASSERT_EQ(mac.size(), 17u);
  EXPECT_EQ(std::stoi(mac.substr(0, 2), nullptr, 16) & 3, 2) << mac; // locally administered, unicast
  r = ctl({"info", "r1"});
  EXPECT_TRUE(
      contains(r.out, "wan 198.18.30.65/32 fd00:30::101/128 (host end bh-r1-0) ingress 20mbit egress 10mbit"))
      << r;

  // Host side: routes to /32 and /128 via the host end, proxy NDP entries on the uplink, the
  // link-local gateways on the host end, forwarding and proxy ARP on; caps as tc qdiscs.
  EXPECT_TRUE(contains(ip({"-4", "route"}), "198.18.30.65 dev bh-r1-0")) << ip({"-4", "route"});
  EXPECT_TRUE(contains(ip({"-6", "route"}), "fd00:30::101 dev bh-r1-0")) << ip({"-6", "route"});
  EXPECT_TRUE(contains(ip({"-6", "neigh", "show", "proxy"}), "fd00:30::101 dev up0 proxy"));
  EXPECT_TRUE(contains(ip({"-6", "neigh", "show", "proxy"}), "fd00:30::170 dev up0 proxy"));
  auto host_end = ip({"-o", "addr", "show", "dev", "bh-r1-0"});
  EXPECT_TRUE(contains(host_end, "169.254.0.1/32")) << host_end;
  EXPECT_TRUE(contains(host_end, "fe80::1/64")) << host_end;
  auto q = tc({"qdisc", "show", "dev", "bh-r1-0"});
  EXPECT_TRUE(contains(q, "qdisc tbf 1: root") && contains(q, "rate 20Mbit")) << q;
  EXPECT_TRUE(contains(q, "qdisc ingress ffff:")) << q;
  EXPECT_TRUE(contains(tc({"qdisc"}), "rate 10Mbit")) << tc({"qdisc"});
  EXPECT_FALSE(contains(tc({"qdisc", "show", "dev", "bh-r2-0"}), "tbf"));

  // Inside: /32 and /128, default routes via the link-local gateways, the stable MAC.
  r = ctl({"exec", "r1", "--", "ip", "addr", "show", "eth0"});
  EXPECT_TRUE(contains(r.out, "198.18.30.65/32")) << r;
  EXPECT_TRUE(contains(r.out, "fd00:30::101/128")) << r;
  EXPECT_TRUE(contains(r.out, mac)) << r;
  r = ctl({"exec", "r1", "--", "ip", "route"});
  EXPECT_TRUE(contains(r.out, "default via 169.254.0.1 dev eth0 onlink")) << r;
  r = ctl({"exec", "r1", "--", "ip", "-6", "route"});
  EXPECT_TRUE(contains(r.out, "default via fe80::1 dev eth0")) << r;
  auto pings = [&](const std::string &where) {
    for (auto [from, to] :
         {std::pair{"r1", "198.18.30.1"}, std::pair{"r1", "198.18.30.70"}, std::pair{"r2", "198.18.30.65"},
          std::pair{"r1", "fd00:30::1"}, std::pair{"r2", "fd00:30::101"}}) {
      auto p = ctl({"exec", from, "--", "ping", "-c", "1", "-W", "3", to});
      EXPECT_TRUE(p.ok()) << where << ": " << from << " -> " << to << ": " << p;
    }
  };
  pings("after start");

  // Live cap changes: one changed, one removed; bad values are one-line errors changing nothing.
  r = ctl({"set", "r1", "--net-limit", "eth0:ingress=5mbit,egress=none"});
  ASSERT_TRUE(r.ok()) << r;
  q = tc({"qdisc", "show", "dev", "bh-r1-0"});
  EXPECT_TRUE(contains(q, "rate 5Mbit")) << q;
  EXPECT_FALSE(contains(q, "ingress")) << q;
  EXPECT_FALSE(contains(ip({"-o", "link"}), "bhifb")) << ip({"-o", "link"});
  EXPECT_EQ(info("r1")["nics"][0]["ingress"], "5mbit");
  EXPECT_TRUE(info("r1")["nics"][0]["egress"].is_null());
  r = ctl({"set", "r1", "--net-limit", "egress=10mbit"});
  ASSERT_TRUE(r.ok()) << r;
  for (auto [args, error] :
       {std::pair{std::vector<std::string>{"set", "r1", "--net-limit", "ingress=fast"},
                  "eth0 ingress: rate 'fast' does not parse"},
        std::pair{std::vector<std::string>{"set", "r1", "--net-limit", "eth3:ingress=1mbit"},
                  "the container has no NIC eth3"},
        std::pair{std::vector<std::string>{"set", "r1", "--net-limit", "ingress=10furlongs"},
                  "unknown unit 'furlongs'"},
        std::pair{std::vector<std::string>{"set", "r1", "--net-limit", "mtu=1"},
                  "expected [NIC:]ingress=RATE"}}) {
    r = ctl(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, error)) << r;
    EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
  }
  EXPECT_EQ(info("r1")["nics"][0]["ingress"], "5mbit");
  EXPECT_TRUE(contains(tc({"qdisc", "show", "dev", "bh-r1-0"}), "rate 5Mbit"));

  // SIGKILL + restart: same links (not re-made), a route and a qdisc removed meanwhile come back.
  std::string links_before = ip({"-o", "link"});
  kill_daemon();
  ASSERT_TRUE(ip_in_netns({"route", "del", "198.18.30.65/32", "dev", "bh-r1-0"}).ok());
  ASSERT_TRUE(ip_in_netns({"-6", "neigh", "del", "proxy", "fd00:30::101", "dev", "up0"}).ok());
  ASSERT_TRUE(bh_test::run_command(
                  {"nsenter", "--net=" + netns_path(), "tc", "qdisc", "del", "dev", "bh-r1-0", "root"})
                  .ok());
  start_daemon();
  EXPECT_EQ(ip({"-o", "link"}), links_before);
  EXPECT_TRUE(contains(ip({"-4", "route"}), "198.18.30.65 dev bh-r1-0")) << ip({"-4", "route"});
  EXPECT_TRUE(contains(ip({"-6", "neigh", "show", "proxy"}), "fd00:30::101 dev up0 proxy"));
  EXPECT_TRUE(contains(tc({"qdisc", "show", "dev", "bh-r1-0"}), "rate 5Mbit"));
  EXPECT_EQ(info("r1")["nics"][0]["mac"], mac);
  pings("after a daemon restart");

  // Bad NICs on a routed network: one line, no container, nothing held.
  for (auto [net, error] :
       {std::pair{"wan:ipv4=198.18.30.1", "is outside the network 198.18.30.64/26"},
        std::pair{"wan:ipv4=198.18.30.70", "address 198.18.30.70 is already taken"},
        std::pair{"wan,ingress=10zbit", "network wan: ingress: rate '10zbit' has an unknown unit"},
        std::pair{"wan,egress=-5mbit", "rate '-5mbit' does not parse"}}) {
    r = ctl({"create", "bad", "--template", "busybox", "--net", net});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, error)) << r;
    EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
    EXPECT_FALSE(bh_test::path_exists(root_ + "/containers/bad"));
  }
  // Bad routed networks.
  for (auto [args, error] :
       {std::pair{
            std::vector<std::string>{"wan2", "--routed", "--uplink", "nope0", "--ipv4", "198.18.31.0/24"},
            "network wan2: uplink nope0 does not exist"},
        std::pair{std::vector<std::string>{"wan2", "--routed", "--ipv4", "198.18.31.0/24"},
                  "--routed needs --uplink"},
        std::pair{std::vector<std::string>{"wan2", "--routed", "--uplink", "up0"},
                  "needs --ipv4 and/or --ipv6"},
        std::pair{std::vector<std::string>{"wan2", "--routed", "--uplink", "up0", "--ipv4", "198.18.30.0/24"},
                  "overlaps network wan (198.18.30.64/26)"},
        std::pair{std::vector<std::string>{"wan2", "--bridge", "--uplink", "up0"},
                  "network wan2: an uplink is for a routed network or a NATed one (--nat)"}}) {
    std::vector<std::string> argv = {"network", "create"};
    argv.insert(argv.end(), args.begin(), args.end());
    r = ctl(argv);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, error)) << r;
    EXPECT_FALSE(bh_test::path_exists(root_ + "/networks/wan2.json"));
  }

  // Stop and destroy: no host end, route, proxy entry, IFB or qdisc left.
  ASSERT_TRUE(ctl({"stop", "r1", "--timeout", "5"}).ok());
  EXPECT_FALSE(contains(ip({"-o", "link"}), "bh-r1")) << ip({"-o", "link"});
  EXPECT_FALSE(contains(ip({"-o", "link"}), "bhifb")) << ip({"-o", "link"});
  EXPECT_FALSE(contains(ip({"-6", "neigh", "show", "proxy"}), "fd00:30::101"));
  ASSERT_TRUE(ctl({"destroy", "r1"}).ok());
  ASSERT_TRUE(ctl({"destroy", "r2", "--force"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "wan"}).ok());
  EXPECT_EQ(state(), before);
}

} // namespace
