// Port forwards (issue 12, `bulkheadctl port add|rm|list`): real traffic from a neighbour netns on
// the uplink through the DNAT rule to a busybox nc listening in the container, the rules read from
// the kernel (libnftables, nat_fixture.hpp), bad input, and the rules following the container's
// life (start, stop, daemon SIGKILL + restart, destroy).
#include <iostream>
#include <thread>

#include "nat_fixture.hpp"

namespace {

using bh_test::CommandResult;
using bh_test::contains;
using bh_test::DaemonNatTest;
using bh_test::json;

class DaemonPortTest : public DaemonNatTest {
protected:
  // Starts `nc -l -p PORT -e netstat -tn` in the container: whoever connects gets the container's
  // view of its TCP connections (so the test sees the peer address the container saw).
  std::thread listen_in(const std::string &container, const std::string &port) {
    std::thread t([this, container, port] {
      ctl({"exec", container, "--", "nc", "-l", "-p", port, "-e", "netstat", "-tn"});
    });
    // Listening before anything connects: no timing assumed, the container's own netstat says so.
    for (int i = 0; i < 200; ++i) {
      auto r = ctl({"exec", container, "--", "netstat", "-tln"});
      if (contains(r.out, ":" + port + " "))
        break;
    }
    return t;
  }
  // Connects from the neighbour to the host's uplink address until the container answers (its
  // netstat names the listener's port 9000).
  CommandResult connect_from_neighbour(const std::string &port) {
    CommandResult seen;
    for (int i = 0; i < 50 && !contains(seen.out, ":9000"); ++i)
      seen = in_neighbour({"busybox", "nc", "-w", "3", "198.18.0.1", port});
    return seen;
  }
  std::string table() { return nft("list table ip bulkhead_wan0").value_or("(no table)"); }
};

TEST_F(DaemonPortTest, NeighbourReachesTheContainerThroughTheForwardUntilRm) {
  make_neighbour();
  start_daemon();
  import_busybox();
  ASSERT_TRUE(
      ctl({"network", "create", "wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat", "--uplink", "up0"})
          .ok());
  auto r = ctl({"create", "c1", "--template", "busybox", "--net", "wan0:ipv4=198.18.77.10", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"port", "add", "c1", "8080:9000"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "forwarding host port 8080/tcp to c1 198.18.77.10:9000\n");
  auto t = table();
  EXPECT_TRUE(contains(t, "type nat hook prerouting priority dstnat; policy accept;")) << t;
  EXPECT_TRUE(contains(t, "iifname \"up0\" fib daddr type local tcp dport 8080 dnat to 198.18.77.10:9000"))
      << t;
  EXPECT_TRUE(contains(t, "type nat hook output priority -100; policy accept;")) << t;
  EXPECT_TRUE(
      contains(t, "ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 198.18.77.10:9000"))
      << t;
  std::cout << "the table with one forward:\n" << t;

  // The neighbour (198.18.0.2) reaches the container's listener on 9000 through 198.18.0.1:8080,
  // and the container sees the neighbour's own address (DNAT only, no masquerade).
  auto listener = listen_in("c1", "9000");
  auto seen = connect_from_neighbour("8080");
  listener.join();
  EXPECT_TRUE(contains(seen.out, "198.18.77.10:9000")) << seen;
  EXPECT_TRUE(contains(seen.out, "198.18.0.2:")) << "the container's peer is the neighbour: " << seen;
  for (const auto &line : bh_test::split_lines(seen.out))
    if (contains(line, "198.18.77.10:9000"))
      std::cout << "the container's netstat: " << line << "\n";

  // From the daemon's host itself, to its uplink address (the output chain).
  listener = listen_in("c1", "9000");
  CommandResult local;
  for (int i = 0; i < 50 && !contains(local.out, ":9000"); ++i)
    local = bh_test::run_command(
        {"nsenter", "--net=" + netns_path(), "busybox", "nc", "-w", "3", "198.18.0.1", "8080"});
  listener.join();
  EXPECT_TRUE(contains(local.out, "198.18.77.10:9000")) << local;

  auto list = json::parse(ctl({"port", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0], (json{{"container", "c1"},
                           {"host_port", 8080},
                           {"container_port", 9000},
                           {"proto", "tcp"},
                           {"network", "wan0"},
                           {"address", "198.18.77.10"},
                           {"active", true}}));
  EXPECT_EQ(info("c1")["ports"], list);
  r = ctl({"port", "list"});
  EXPECT_TRUE(contains(r.out, "c1")) << r;
  EXPECT_TRUE(contains(r.out, "8080/tcp")) << r;
  EXPECT_TRUE(contains(r.out, "198.18.77.10:9000")) << r;

  // The NIC under a forward cannot be detached: the rule would point at a freed address.
  r = ctl({"net", "detach", "c1", "eth0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "port rm c1 8080/tcp")) << r;
  EXPECT_TRUE(contains(nft("list table ip bulkhead_wan0").value_or(""), "dnat")) << "the forward must stay";

  // rm: the rule is gone; with the container listening, the neighbour's connection is refused by
  // the host (nothing listens on 198.18.0.1:8080) and never reaches it.
  r = ctl({"port", "rm", "c1", "8080/tcp"});
  ASSERT_TRUE(r.ok()) << r;
  t = table();
  EXPECT_FALSE(contains(t, "dnat")) << t;
  EXPECT_FALSE(contains(t, "prerouting")) << t;
  EXPECT_TRUE(contains(t, "masquerade")) << t;
  listener = listen_in("c1", "9000");
  auto refused = in_neighbour({"busybox", "nc", "-w", "3", "198.18.0.1", "8080"});
  EXPECT_FALSE(contains(refused.out, ":9000")) << refused;
  EXPECT_TRUE(contains(refused.err, "Connection refused")) << refused;
  // The listener was up all along: the container's own connection ends it.
  auto inside = ctl({"exec", "c1", "--", "nc", "-w", "3", "127.0.0.1", "9000"});
  listener.join();
  EXPECT_TRUE(contains(inside.out, "127.0.0.1:9000")) << inside;
  EXPECT_EQ(ctl({"port", "list", "c1", "--json"}).out, "[]\n");

  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "wan0"}).ok());
  EXPECT_EQ(nft("list tables"), std::optional<std::string>(""));
}

TEST_F(DaemonPortTest, ForwardsFollowTheContainerAndBadInputChangesNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"network", "create", "wan0", "--bridge", "--ipv4", "198.18.77.1/24", "--nat"}).ok());
  ASSERT_TRUE(ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.78.1/24"}).ok());
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox", "--net", "wan0:ipv4=198.18.77.10"}).ok());
  ASSERT_TRUE(ctl({"create", "c2", "--template", "busybox", "--net", "wan0:ipv4=198.18.77.11"}).ok());
  ASSERT_TRUE(ctl({"create", "c3", "--template", "busybox", "--net", "lan0"}).ok());
  ASSERT_TRUE(ctl({"create", "c4", "--template", "busybox"}).ok());

  // Stopped: the forward is kept, not in the table.
  auto r = ctl({"port", "add", "c1", "8080:80"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "forwarding host port 8080/tcp to c1 198.18.77.10:80 (when it runs)\n");
  ASSERT_TRUE(ctl({"port", "add", "c1", "5353:53/udp"}).ok());
  EXPECT_FALSE(contains(table(), "dnat")) << table();

  std::string before_list = ctl({"port", "list", "--json"}).out;
  std::string before_table = table();
  std::string before_record = bh_test::read_file(root_ + "/containers/c1/container.json");
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"add", "c1", "0:80"}, "port add: \"0:80\": host port '0' is not a port (a number from 1 to 65535)"},
      {{"add", "c1", "65536:80"}, "host port '65536' is not a port"},
      {{"add", "c1", "http:80"}, "host port 'http' is not a port"},
      {{"add", "c1", "8081:-1"}, "container port '-1' is not a port"},
      {{"add", "c1", "8081"}, "give HOSTPORT:CTPORT[/tcp|udp]"},
      {{"add", "c1", "8081:80/sctp"}, "protocol 'sctp': tcp or udp"},
      {{"add", "nope", "8081:80"}, "container \"nope\" does not exist"},
      {{"add", "c1", "8080:81"}, "host port 8080/tcp is already forwarded to container c1 (port 80)"},
      {{"add", "c2", "8080:80"}, "host port 8080/tcp is already forwarded to container c1 (port 80)"},
      {{"add", "c2", "5353:53/udp"}, "host port 5353/udp is already forwarded to container c1 (port 53)"},
      {{"add", "c3", "8081:80"},
       "container c3 has no NIC on a NATed network with an IPv4 address (port forwards go to one: create it "
       "with --net NETWORK, NETWORK made with --ipv4 and --nat)"},
      {{"add", "c4", "8081:80"}, "container c4 has no NIC on a NATed network"},
      {{"rm", "c1", "8081"}, "container c1 has no forward of host port 8081/tcp"},
      {{"rm", "c1", "8080/udp"}, "container c1 has no forward of host port 8080/udp"},
      {{"rm", "c2", "8080"}, "container c2 has no forward of host port 8080/tcp"},
      {{"rm", "c1", "8080:80"}, "give HOSTPORT[/tcp|udp]"},
      {{"rm", "nope", "8080"}, "container \"nope\" does not exist"},
      {{"list", "nope"}, "container \"nope\" does not exist"},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = {"port"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    r = ctl(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.error)) << r;
  }
  // What bulkheadctl would never send.
  for (const auto &[body, error] : std::vector<std::pair<json, std::string>>{
           {json{{"host_port", 0}, {"container_port", 80}},
            "host_port 0: a port is a number from 1 to 65535"},
           {json{{"host_port", 65536}, {"container_port", 80}}, "host_port 65536: a port is a number"},
           {json{{"host_port", -5}, {"container_port", 80}}, "host_port -5: a port is a number"},
           {json{{"host_port", "80"}, {"container_port", 80}},
            "host_port \"80\": a port is a number from 1 to 65535, not string"},
           {json{{"host_port", 8081}}, "a port forward needs \"container_port\""},
           {json{{"host_port", 8081}, {"container_port", 80}, {"proto", "icmp"}},
            "protocol 'icmp': tcp or udp"},
           {json{{"host_port", 8081}, {"container_port", 80}, {"via", "x"}},
            "unknown field in a port forward: via"},
       }) {
    auto h = http("POST", "/1.0/containers/c1/ports", body.dump());
    EXPECT_EQ(h.status, 400) << body << " " << h.body;
    EXPECT_TRUE(contains(h.body.value("error", ""), error)) << body << " " << h.body;
  }
  auto h = http("DELETE", "/1.0/containers/c1/ports/0/tcp");
  EXPECT_EQ(h.status, 400) << h.body;
  h = http("DELETE", "/1.0/containers/c1/ports/8080/sctp");
  EXPECT_EQ(h.status, 400) << h.body;
  h = http("POST", "/1.0/containers/c1/ports", json{{"host_port", 8080}, {"container_port", 80}}.dump());
  EXPECT_EQ(h.status, 409) << h.body;
  EXPECT_EQ(ctl({"port", "list", "--json"}).out, before_list);
  EXPECT_EQ(table(), before_table);
  EXPECT_EQ(bh_test::read_file(root_ + "/containers/c1/container.json"), before_record);

  // Start: both rules; stop: none; start again, add one while running, SIGKILL + restart of the
  // daemon: the same table (rebuilt atomically, once); destroy: none, and the port is free again.
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  auto t = table();
  EXPECT_TRUE(
      contains(t, "iifname != \"bh-wan0\" fib daddr type local tcp dport 8080 dnat to 198.18.77.10:80"))
      << t;
  EXPECT_TRUE(
      contains(t, "iifname != \"bh-wan0\" fib daddr type local udp dport 5353 dnat to 198.18.77.10:53"))
      << t;
  EXPECT_EQ(json::parse(ctl({"port", "list", "c1", "--json"}).out)[0]["active"], true);
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "1"}).ok());
  EXPECT_FALSE(contains(table(), "dnat")) << table();
  EXPECT_EQ(json::parse(ctl({"port", "list", "c1", "--json"}).out)[0]["active"], false);
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  ASSERT_TRUE(ctl({"start", "c2"}).ok());
  r = ctl({"port", "add", "c2", "8443:443"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "forwarding host port 8443/tcp to c2 198.18.77.11:443\n");
  t = table();
  EXPECT_TRUE(contains(t, "tcp dport 8443 dnat to 198.18.77.11:443")) << t;
  kill_daemon();
  start_daemon();
  EXPECT_EQ(table(), t);
  EXPECT_EQ(bh_test::split_lines(nft("list tables").value_or("")).size(), 1u);
  EXPECT_EQ(json::parse(ctl({"port", "list", "--json"}).out).size(), 3u);
  r = ctl({"port", "add", "c2", "8080:80"});
  EXPECT_TRUE(contains(r.err, "already forwarded to container c1")) << "after the restart too: " << r;

  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
  t = table();
  EXPECT_FALSE(contains(t, "198.18.77.10")) << t;
  EXPECT_TRUE(contains(t, "198.18.77.11:443")) << t;
  ASSERT_TRUE(ctl({"port", "add", "c2", "8080:80"}).ok()) << "8080 is free once c1 is gone";
  ASSERT_TRUE(ctl({"destroy", "c2", "--force"}).ok());
  t = table();
  EXPECT_FALSE(contains(t, "dnat")) << t;
  EXPECT_EQ(ctl({"port", "list", "--json"}).out, "[]\n");
}

} // namespace
