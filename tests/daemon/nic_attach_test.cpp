// `bulkheadctl net attach/detach` (issue 12 item 1): NICs hot-plugged into running containers and
// added to stopped ones. The daemon runs in the test's own network namespace
// (DaemonTest::use_private_netns); addresses are from 198.18.0.0/15 and fd00::/8.
#include <gtest/gtest.h>

#include "daemon_fixture.hpp"

namespace {

using bh_test::contains;
using bh_test::json;

class DaemonNicAttachTest : public bh_test::DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    use_private_netns();
  }
  std::string links() {
    auto r = ip_in_netns({"-o", "link"});
    EXPECT_TRUE(r.ok()) << r;
    return r.out;
  }
  // "index: name" of every link: what was made or deleted, not the operstate a bridge reaches
  // on its own time (UNKNOWN, then UP).
  std::string link_ids() {
    std::string out;
    for (const auto &line : bh_test::split_lines(links())) {
      auto colon = line.find(": ");
      out += line.substr(0, line.find(':', colon + 2)) + "\n";
    }
    return out;
  }
  bool has_link(const std::string &name) {
    std::string all = links();
    return contains(all, ": " + name + ":") || contains(all, ": " + name + "@");
  }
  std::string ct_links(const std::string &ct) {
    auto r = ctl({"exec", ct, "--", "ip", "-o", "link"});
    EXPECT_TRUE(r.ok()) << r;
    return r.out;
  }
  void ping(const std::string &from, const std::string &to, const std::string &where) {
    auto p = ctl({"exec", from, "--", "ping", "-c", "1", "-W", "3", to});
    EXPECT_TRUE(p.ok()) << where << ": " << from << " -> " << to << ": " << p;
  }
  void make_networks() {
    ASSERT_TRUE(
        ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.77.1/24", "--ipv6", "fd42:77::1/64"})
            .ok());
    ASSERT_TRUE(
        ctl({"network", "create", "lan1", "--bridge", "--ipv4", "198.18.78.1/24", "--ipv6", "fd42:78::1/64"})
            .ok());
  }
  // The addresses a network's IPAM holds, with their owners (a record file made on first use
  // holds none, as a missing one).
  std::string leases(const std::string &net) {
    std::string out;
    for (const char *family : {".v4.json", ".v6.json"}) {
      std::string path = root_ + "/networks/" + net + family;
      if (!bh_test::path_exists(path))
        continue;
      // Named: a range-for over a member of the temporary parse() result would dangle.
      json file = json::parse(bh_test::read_file(path));
      for (const auto &a : file["allocations"])
        out += a["address"].get<std::string>() + " " + a["owner"].get<std::string>() + "\n";
    }
    return out;
  }
};

TEST_F(DaemonNicAttachTest, HotPluggedNicsPingSurviveADaemonCrashAndDetachFreesTheAddress) {
  start_daemon();
  import_busybox();
  make_networks();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox", "--net", "lan0", "--start"}).ok());
  ASSERT_TRUE(ctl({"create", "c2", "--template", "busybox", "--start"}).ok());

  // c1 gets a second NIC (eth1), c2 its first (eth0, with the default routes).
  auto r = ctl({"net", "attach", "c1", "lan1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "attached eth1 to c1: lan1 198.18.78.2/24 fd42:78::2/64 (host end bh-c1-1)\n");
  r = ctl({"net", "attach", "c2", "lan1:ipv4=198.18.78.20,ipv6=fd42:78::20"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "attached eth0 to c2: lan1 198.18.78.20/24 fd42:78::20/64 (host end bh-c2-0)\n");
  auto i1 = info("c1");
  ASSERT_EQ(i1["nics"].size(), 2u) << i1.dump();
  EXPECT_EQ(i1["nics"][1]["name"], "eth1");
  EXPECT_EQ(i1["nics"][1]["network"], "lan1");
  EXPECT_TRUE(contains(ct_links("c1"), "eth1@")) << ct_links("c1");
  EXPECT_TRUE(contains(links(), "bh-c1-1@")) << links();
  EXPECT_TRUE(contains(ip_in_netns({"-o", "link", "show", "bh-c1-1"}).out, "master bh-lan1"));
  r = ctl({"exec", "c2", "--", "ip", "route"});
  EXPECT_TRUE(contains(r.out, "default via 198.18.78.1 dev eth0")) << r;
  r = ctl({"exec", "c1", "--", "ip", "route"});
  EXPECT_TRUE(contains(r.out, "default via 198.18.77.1 dev eth0")) << r; // unchanged
  auto pings = [&](const std::string &where) {
    ping("c1", "198.18.78.20", where);
    ping("c2", "198.18.78.2", where);
    ping("c1", "fd42:78::20", where);
    ping("c2", "fd42:78::2", where);
    ping("c2", "198.18.78.1", where);
  };
  pings("after attach");

  // A crash + restart re-adopts the hot-plugged NICs like any other: same links, still talking.
  std::string before = link_ids();
  kill_daemon();
  // What a crash in the middle of an attach leaves: a veth with the daemon's NIC alias that no
  // record names. The restarted daemon deletes it.
  ASSERT_TRUE(ip_in_netns({"link", "add", "bh-c1-5", "type", "veth", "peer", "name", "stray5"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "set", "bh-c1-5", "alias", "bulkhead:nic/lan1/eth5"}).ok());
  // One that no container of this daemon would have (another daemon's, say) is left alone.
  ASSERT_TRUE(ip_in_netns({"link", "add", "bh-other-0", "type", "veth", "peer", "name", "other0"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "set", "bh-other-0", "alias", "bulkhead:nic/lan1/eth0"}).ok());
  start_daemon();
  EXPECT_TRUE(has_link("bh-other-0")) << links();
  ASSERT_TRUE(ip_in_netns({"link", "del", "bh-other-0"}).ok());
  EXPECT_EQ(link_ids(), before);
  EXPECT_EQ(info("c1")["nics"], i1["nics"]);
  pings("after a daemon restart");

  // Detach: the link goes on the host and in the container, the addresses are free again.
  r = ctl({"net", "detach", "c1", "eth1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "detached eth1 from c1: lan1 198.18.78.2/24 fd42:78::2/64 (host end bh-c1-1)\n");
  EXPECT_FALSE(has_link("bh-c1-1")) << links();
  EXPECT_FALSE(contains(ct_links("c1"), "eth1")) << ct_links("c1");
  EXPECT_EQ(info("c1")["nics"].size(), 1u);
  EXPECT_FALSE(contains(leases("lan1"), "container/c1/")) << leases("lan1");
  ping("c1", "198.18.77.1", "c1's eth0 after detaching eth1");
  // A new attach reuses the name and the addresses.
  r = ctl({"net", "attach", "c1", "lan1:ipv4=198.18.78.2,ipv6=fd42:78::2"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "attached eth1 to c1")) << r;
  ping("c2", "198.18.78.2", "after attaching again");
  ping("c2", "fd42:78::2", "after attaching again");

  // Detaching by network; detaching what is not there is refused, and changes nothing.
  r = ctl({"net", "detach", "c2", "lan1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(has_link("bh-c2-0")) << links();
  EXPECT_EQ(info("c2")["nics"].size(), 0u);
  for (auto [ct, nic, error] :
       {std::tuple{"c1", "eth7", "container c1 has no NIC eth7"},
        std::tuple{"c2", "lan1", "container c2 has no NIC lan1"}, std::tuple{"nope", "eth0", "nope"}}) {
    r = ctl({"net", "detach", ct, nic});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, error)) << r;
    EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
  }
  EXPECT_EQ(info("c1")["nics"].size(), 2u);

  // Detaching the first NIC hands the default routes to the next one.
  r = ctl({"net", "detach", "c1", "eth0"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"exec", "c1", "--", "ip", "route"});
  EXPECT_TRUE(contains(r.out, "default via 198.18.78.1 dev eth1")) << r;
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
  ASSERT_TRUE(ctl({"destroy", "c2", "--force"}).ok());
  EXPECT_FALSE(contains(links(), "bh-c")) << links();
  EXPECT_FALSE(contains(leases("lan0") + leases("lan1"), "container/")) << leases("lan0") + leases("lan1");
  ASSERT_TRUE(ctl({"network", "rm", "lan0"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "lan1"}).ok());
}

TEST_F(DaemonNicAttachTest, AttachToAStoppedContainerAndBadInputLeavesNothing) {
  start_daemon();
  import_busybox();
  make_networks();
  ASSERT_TRUE(ctl({"create", "c3", "--template", "busybox"}).ok());
  ASSERT_TRUE(
      ctl({"create", "c4", "--template", "busybox", "--net", "lan0:ipv4=198.18.77.40", "--start"}).ok());

  // Stopped: only the record changes; the NIC is made at start.
  auto r = ctl({"net", "attach", "c3", "lan0,egress=10mbit"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "attached eth0 to c3: lan0 198.18.77.2/24 fd42:77::3/64 (host end bh-c3-0)\n");
  EXPECT_FALSE(has_link("bh-c3-0")) << links();
  auto i3 = info("c3");
  ASSERT_EQ(i3["nics"].size(), 1u) << i3.dump();
  EXPECT_EQ(i3["nics"][0]["egress"], "10mbit");
  ASSERT_TRUE(ctl({"start", "c3"}).ok());
  EXPECT_TRUE(has_link("bh-c3-0")) << links();
  EXPECT_TRUE(contains(ct_links("c3"), "eth0@")) << ct_links("c3");
  ping("c3", "198.18.77.40", "attached while stopped");
  ping("c3", "fd42:77::1", "attached while stopped");
  r = ctl({"exec", "c3", "--", "cat", "/etc/resolv.conf"});
  EXPECT_TRUE(contains(r.out, "nameserver 198.18.77.1\n")) << r;

  // Bad input, to a stopped and to a running container: one line, nothing changed.
  ASSERT_TRUE(ctl({"stop", "c3", "--timeout", "5"}).ok());
  std::string links_before = link_ids(), leases_before = leases("lan0") + leases("lan1");
  auto nics3 = info("c3")["nics"], nics4 = info("c4")["nics"];
  for (const char *ct : {"c3", "c4"})
    for (auto [spec, error] :
         {std::pair{"nope", "network nope does not exist"},
          std::pair{"lan0:ipv4=198.18.78.5", "address 198.18.78.5 is outside the network 198.18.77.0/24"},
          std::pair{"lan0:ipv4=198.18.77.40", "address 198.18.77.40 is already taken"},
          std::pair{"lan0:ipv6=fd42:77::2", "address fd42:77::2 is already taken"},
          std::pair{"lan0:ipv4=198.18.77.1", "address 198.18.77.1 is reserved"},
          std::pair{"lan1,ingress=fast", "network lan1: ingress"},
          std::pair{"lan0:mtu=9000", "net attach lan0:mtu=9000: expected ipv4=ADDRESS"}}) {
      r = ctl({"net", "attach", ct, spec});
      EXPECT_EQ(r.exit_code, 1) << ct << " " << spec << ": " << r;
      EXPECT_TRUE(contains(r.err, error)) << r;
      EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
    }
  r = ctl({"net", "attach", "nope", "lan0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  // What bulkheadctl never sends: 400 naming the NIC object.
  auto h = http("POST", "/1.0/containers/c4/nics", R"({"net":"lan0"})");
  EXPECT_EQ(h.status, 400) << h.body.dump();
  EXPECT_TRUE(contains(h.body.dump(), "a NIC is")) << h.body.dump();
  h = http("POST", "/1.0/containers/c4/nics", R"({"network":"lan0","mtu":9000})");
  EXPECT_EQ(h.status, 400) << h.body.dump();
  EXPECT_TRUE(contains(h.body.dump(), "unknown field in a NIC: mtu")) << h.body.dump();
  EXPECT_EQ(http("DELETE", "/1.0/containers/c4/nics/eth9").status, 404);
  EXPECT_EQ(link_ids(), links_before);
  EXPECT_EQ(leases("lan0") + leases("lan1"), leases_before);
  EXPECT_EQ(info("c3")["nics"], nics3);
  EXPECT_EQ(info("c4")["nics"], nics4);

  // A hot-plug failing midway (the bridge was deleted behind the daemon's back) removes what it
  // made: no veth, no lease, the record unchanged.
  ASSERT_TRUE(ip_in_netns({"link", "del", "bh-lan1"}).ok());
  links_before = link_ids();
  r = ctl({"net", "attach", "c4", "lan1"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "attaching to c4: eth1 on network lan1")) << r;
  EXPECT_TRUE(contains(r.err, "bh-lan1")) << r;
  EXPECT_EQ(link_ids(), links_before);
  EXPECT_FALSE(contains(ct_links("c4"), "eth1")) << ct_links("c4");
  EXPECT_EQ(leases("lan0") + leases("lan1"), leases_before);
  EXPECT_EQ(info("c4")["nics"], nics4);
  ping("c4", "198.18.77.1", "after the failed attach");

  ASSERT_TRUE(ctl({"destroy", "c3", "--force"}).ok());
  ASSERT_TRUE(ctl({"destroy", "c4", "--force"}).ok());
  EXPECT_FALSE(contains(links(), "bh-c")) << links();
  ASSERT_TRUE(ctl({"network", "rm", "lan0"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "lan1"}).ok());
}

// A routed NIC hot-plugged with caps: host routes, proxy NDP entry, link-local gateways, tc
// qdiscs and IFB made at once, and all gone again at detach.
TEST_F(DaemonNicAttachTest, RoutedNicHotPlugWithCapsAndDetachLeavesNothing) {
  // The uplink: one end of a veth pair with the host's addresses (as in DaemonRoutedTest).
  ASSERT_TRUE(ip_in_netns({"link", "add", "up0", "type", "veth", "peer", "name", "nb0"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "set", "up0", "up"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "set", "nb0", "up"}).ok());
  ASSERT_TRUE(ip_in_netns({"addr", "add", "198.18.30.1/24", "dev", "up0"}).ok());
  ASSERT_TRUE(ip_in_netns({"addr", "add", "fd00:30::1/64", "dev", "up0", "nodad"}).ok());
  auto ip = [&](const std::vector<std::string> &args) { return ip_in_netns(args).out; };
  auto tc = [&](const std::vector<std::string> &args) {
    std::vector<std::string> argv = {"nsenter", "--net=" + netns_path(), "tc"};
    argv.insert(argv.end(), args.begin(), args.end());
    return bh_test::run_command(argv).out;
  };
  auto state = [&] {
    return ip({"-o", "link"}) + ip({"-4", "route"}) + ip({"-6", "route"}) +
           ip({"-6", "neigh", "show", "proxy"}) + tc({"qdisc"});
  };
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"network", "create", "wan", "--routed", "--uplink", "up0", "--ipv4", "198.18.30.64/26",
                   "--ipv6", "fd00:30::100/120"})
                  .ok());
  ASSERT_TRUE(ctl({"create", "r1", "--template", "busybox", "--start"}).ok());
  ASSERT_TRUE(ctl({"create", "r2", "--template", "busybox", "--net",
                   "wan:ipv4=198.18.30.70,ipv6=fd00:30::170", "--start"})
                  .ok());
  std::string before = state();

  auto r = ctl({"net", "attach", "r1", "wan,ingress=20mbit,egress=10mbit"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "attached eth0 to r1: wan 198.18.30.65/32 fd00:30::101/128 (host end bh-r1-0)\n");
  EXPECT_TRUE(contains(ip({"-4", "route"}), "198.18.30.65 dev bh-r1-0")) << ip({"-4", "route"});
  EXPECT_TRUE(contains(ip({"-6", "route"}), "fd00:30::101 dev bh-r1-0")) << ip({"-6", "route"});
  EXPECT_TRUE(contains(ip({"-6", "neigh", "show", "proxy"}), "fd00:30::101 dev up0 proxy"));
  auto host_end = ip({"-o", "addr", "show", "dev", "bh-r1-0"});
  EXPECT_TRUE(contains(host_end, "169.254.0.1/32")) << host_end;
  auto q = tc({"qdisc", "show", "dev", "bh-r1-0"});
  EXPECT_TRUE(contains(q, "qdisc tbf 1: root") && contains(q, "rate 20Mbit")) << q;
  EXPECT_TRUE(contains(tc({"qdisc"}), "rate 10Mbit")) << tc({"qdisc"});
  r = ctl({"exec", "r1", "--", "ip", "route"});
  EXPECT_TRUE(contains(r.out, "default via 169.254.0.1 dev eth0 onlink")) << r;
  for (auto [from, to] : {std::pair{"r1", "198.18.30.1"}, std::pair{"r1", "198.18.30.70"},
                          std::pair{"r2", "198.18.30.65"}, std::pair{"r2", "fd00:30::101"}})
    ping(from, to, "routed hot-plug");

  r = ctl({"net", "detach", "r1", "eth0"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(state(), before);
  EXPECT_FALSE(contains(ct_links("r1"), "eth0")) << ct_links("r1");
  EXPECT_FALSE(contains(leases("wan"), "container/r1/")) << leases("wan");
  ASSERT_TRUE(ctl({"destroy", "r1", "--force"}).ok());
  ASSERT_TRUE(ctl({"destroy", "r2", "--force"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "wan"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "del", "up0"}).ok());
}

} // namespace
