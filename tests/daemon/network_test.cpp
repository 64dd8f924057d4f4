// Managed networks in bulkheadd (issue 12 item 1): the daemon runs in a network namespace of the
// test's own (DaemonTest::use_private_netns), so bridges, veths and container traffic never touch
// the host's network; addresses are from 198.18.0.0/15 and fd00::/8.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "daemon_fixture.hpp"

namespace {

using bh_test::contains;
using bh_test::json;

class DaemonNetworkTest : public bh_test::DaemonTest {
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
  // "ifindex: name" of a link, empty when absent.
  std::string link_line(const std::string &name) {
    for (const auto &line : bh_test::split_lines(links()))
      if (contains(line, ": " + name + ":") || contains(line, ": " + name + "@"))
        return line.substr(0, line.find(name) + name.size());
    return "";
  }
};

TEST_F(DaemonNetworkTest, CreateListRemoveAndReadoptAfterSigkill) {
  start_daemon();
  auto r =
      ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.77.1/24", "--ipv6", "fd42:77::1/64"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "created network lan0 (bridge bh-lan0)\n");
  std::string bridge = link_line("bh-lan0");
  ASSERT_FALSE(bridge.empty()) << links();
  auto addrs = ip_in_netns({"-o", "addr", "show", "dev", "bh-lan0"});
  EXPECT_TRUE(contains(addrs.out, "198.18.77.1/24")) << addrs;
  EXPECT_TRUE(contains(addrs.out, "fd42:77::1/64")) << addrs;
  EXPECT_TRUE(contains(links(), "alias bulkhead:network/lan0")) << links();

  r = ctl({"network", "list", "--json"});
  ASSERT_TRUE(r.ok()) << r;
  auto list = json::parse(r.out);
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0]["name"], "lan0");
  EXPECT_EQ(list[0]["bridge"], "bh-lan0");
  EXPECT_EQ(list[0]["ipv4"], "198.18.77.1/24");
  EXPECT_EQ(list[0]["ipv6"], "fd42:77::1/64");
  r = ctl({"network", "list"});
  EXPECT_TRUE(contains(r.out, "lan0  bh-lan0  198.18.77.1/24  fd42:77::1/64  1500")) << r;
  auto h = http("GET", "/1.0/networks/lan0");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body["ipv4"], "198.18.77.1/24");
  EXPECT_EQ(http("GET", "/1.0/networks/nope").status, 404);

  // A crash and a restart: the record brings the network back, the bridge is adopted, not remade.
  kill_daemon();
  start_daemon();
  EXPECT_EQ(link_line("bh-lan0"), bridge) << links();
  r = ctl({"network", "list", "--json"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(json::parse(r.out).size(), 1u) << r.out;

  r = ctl({"network", "rm", "lan0"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(link_line("bh-lan0"), "") << links();
  EXPECT_FALSE(bh_test::path_exists(root_ + "/networks/lan0.json"));
  r = ctl({"network", "list", "--json"});
  EXPECT_EQ(r.out, "[]\n") << r;
}

TEST_F(DaemonNetworkTest, BadNetworksAreClearErrorsAndLeaveNothing) {
  start_daemon();
  ASSERT_TRUE(
      ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.77.1/24", "--ipv6", "fd42:77::1/64"})
          .ok());
  std::string before = links();
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"lan1", "--bridge", "--ipv4", "198.18.77.129/25"},
       "network lan1: subnet 198.18.77.129/25 overlaps network lan0 (198.18.77.1/24)"},
      {{"lan1", "--bridge", "--ipv4", "198.18.78.0/24"},
       "network lan1: ipv4 198.18.78.0/24: the bridge needs a host address, not the network or broadcast "
       "address"},
      {{"lan1", "--bridge", "--ipv4", "198.18.78.1/31"}, "at most /30"},
      {{"lan1", "--bridge", "--ipv4", "fd00::1/64"}, "network lan1: ipv4 fd00::1/64: not an IPv4 address"},
      {{"lan1", "--bridge", "--ipv4", "198.18.300.1/24"}, "network lan1: ipv4 198.18.300.1/24"},
      {{"Lan1", "--bridge"}, "network name 'Lan1': only a-z, 0-9 and '-' (not first)"},
      {{"a-very-long-name", "--bridge"}, "network name 'a-very-long-name': 1 to 12 characters"},
      {{"lan0", "--bridge", "--ipv4", "198.18.79.1/24"}, "network lan0 already exists"},
      {{"lan1", "--bridge", "--ipv4", "198.18.79.1/24", "--ipv6", "fd42::1/16"},
       "network lan1: subnet fd42::1/16 overlaps network lan0 (fd42:77::1/64)"},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = {"network", "create"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.error)) << r;
    EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
  }
  // A bridge of the same name that is not the daemon's is refused, and left alone.
  ASSERT_TRUE(ip_in_netns({"link", "add", "bh-lan2", "type", "bridge"}).ok());
  auto r = ctl({"network", "create", "lan2", "--bridge", "--ipv4", "198.18.80.1/24"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "bridge bh-lan2 exists and is not ours")) << r;
  EXPECT_FALSE(link_line("bh-lan2").empty());
  ASSERT_TRUE(ip_in_netns({"link", "del", "bh-lan2"}).ok());
  EXPECT_EQ(links(), before);
  r = ctl({"network", "rm", "nope"});
  EXPECT_TRUE(contains(r.err, "no network named nope")) << r;
  r = ctl({"network", "list", "--json"});
  EXPECT_EQ(json::parse(r.out).size(), 1u) << r;
  EXPECT_FALSE(bh_test::path_exists(root_ + "/networks/lan1.json"));
  EXPECT_FALSE(bh_test::path_exists(root_ + "/networks/lan2.json"));
}

TEST_F(DaemonNetworkTest, BridgedContainersPingAcrossARestartAndLeaveNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(
      ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.77.1/24", "--ipv6", "fd42:77::1/64"})
          .ok());
  auto r = ctl({"create", "c1", "--template", "busybox", "--net", "lan0", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"create", "c2", "--template", "busybox", "--net", "lan0:ipv4=198.18.77.50,ipv6=fd42:77::50",
           "--start"});
  ASSERT_TRUE(r.ok()) << r;
  auto i1 = info("c1"), i2 = info("c2");
  ASSERT_EQ(i1["nics"].size(), 1u) << i1.dump();
  EXPECT_EQ(i1["nics"][0]["network"], "lan0");
  EXPECT_EQ(i1["nics"][0]["name"], "eth0");
  EXPECT_EQ(i1["nics"][0]["host_name"], "bh-c1-0");
  EXPECT_EQ(i1["nics"][0]["ipv4"], "198.18.77.2/24");
  EXPECT_EQ(i1["nics"][0]["ipv6"], "fd42:77::2/64");
  EXPECT_EQ(i2["nics"][0]["ipv4"], "198.18.77.50/24");
  EXPECT_EQ(i2["nics"][0]["ipv6"], "fd42:77::50/64");
  r = ctl({"info", "c1"});
  EXPECT_TRUE(contains(r.out, "eth0:")) << r;
  EXPECT_TRUE(contains(r.out, "lan0 198.18.77.2/24 fd42:77::2/64 (host end bh-c1-0)")) << r;

  auto pings = [&](const std::string &where) {
    for (auto [from, to] :
         {std::pair{"c1", "198.18.77.50"}, std::pair{"c2", "198.18.77.2"}, std::pair{"c1", "fd42:77::50"},
          std::pair{"c2", "fd42:77::2"}, std::pair{"c1", "198.18.77.1"}}) {
      auto p = ctl({"exec", from, "--", "ping", "-c", "1", "-W", "3", to});
      EXPECT_TRUE(p.ok()) << where << ": " << from << " -> " << to << ": " << p;
    }
  };
  pings("after start");
  // A restart of the container makes its NIC again, with the same addresses.
  ASSERT_TRUE(ctl({"restart", "c1", "--timeout", "5"}).ok());
  wait_info("c1", [](const json &j) { return j["state"] == "running"; });
  pings("after restarting c1");
  r = ctl({"exec", "c1", "--", "cat", "/etc/resolv.conf", "/etc/hosts"});
  EXPECT_TRUE(contains(r.out, "nameserver 198.18.77.1\n")) << r;
  EXPECT_TRUE(contains(r.out, "198.18.77.2\tc1\n")) << r;
  r = ctl({"exec", "c1", "--", "ip", "-o", "link"});
  EXPECT_TRUE(contains(r.out, "eth0@")) << r;
  auto i1_started = info("c1");
  ASSERT_TRUE(i1_started["nics"][0]["mac"].is_string()) << i1_started.dump();
  EXPECT_EQ(i1_started["nics"][0]["mac"].get<std::string>().size(), 17u);
  EXPECT_TRUE(contains(r.out, i1_started["nics"][0]["mac"].get<std::string>())) << r;
  EXPECT_TRUE(contains(r.out, "mtu 1500")) << r;
  std::string host_ends = link_line("bh-c1-0") + link_line("bh-c2-0");
  EXPECT_TRUE(contains(links(), "master bh-lan0")) << links();

  r = ctl({"network", "rm", "lan0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "network lan0 is used by c1, c2")) << r;

  // Crash + restart: nothing recreated (same host ends), same addresses, still talking.
  kill_daemon();
  start_daemon();
  EXPECT_EQ(link_line("bh-c1-0") + link_line("bh-c2-0"), host_ends) << links();
  auto i1_after = info("c1");
  for (const char *k : {"network", "name", "host_name", "ipv4", "ipv6"})
    EXPECT_EQ(i1_after["nics"][0][k], i1["nics"][0][k]) << k;
  pings("after a daemon restart");

  // Bad NICs: one line, no container, no address taken.
  for (auto [net, error] :
       {std::pair{"nope", "network nope does not exist"},
        std::pair{"lan0:ipv4=198.18.78.5", "address 198.18.78.5 is outside the network 198.18.77.0/24"},
        std::pair{"lan0:ipv4=198.18.77.50", "address 198.18.77.50 is already taken"},
        std::pair{"lan0:ipv6=fd42:77::2", "address fd42:77::2 is already taken"},
        std::pair{"lan0:ipv4=198.18.77.1", "address 198.18.77.1 is reserved"},
        std::pair{"lan0:mtu=9000", "expected ipv4=ADDRESS or ipv6=ADDRESS"}}) {
    r = ctl({"create", "bad", "--template", "busybox", "--net", net});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, error)) << r;
    EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
    EXPECT_FALSE(bh_test::path_exists(root_ + "/containers/bad"));
  }

  // Stop: the veth goes with the container's netns; destroy gives the addresses back.
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "5"}).ok());
  EXPECT_EQ(link_line("bh-c1-0"), "") << links();
  ASSERT_TRUE(ctl({"destroy", "c1"}).ok());
  ASSERT_TRUE(ctl({"destroy", "c2", "--force"}).ok());
  EXPECT_FALSE(contains(links(), "veth")) << links();
  EXPECT_FALSE(contains(links(), "bh-c")) << links();
  r = ctl({"create", "c3", "--template", "busybox", "--net", "lan0"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("c3")["nics"][0]["ipv4"], "198.18.77.2/24");
  ASSERT_TRUE(ctl({"destroy", "c3"}).ok());

  // An address the IPAM holds for no container (a crash between allocation and the record) is
  // given back when the daemon starts.
  kill_daemon();
  std::string v4 = root_ + "/networks/lan0.v4.json";
  json pool = json::parse(bh_test::read_file(v4));
  pool["allocations"].push_back({{"address", "198.18.77.9"}, {"owner", "container/ghost/eth0"}});
  ASSERT_TRUE(bh_test::write_file(v4, pool.dump()));
  start_daemon();
  EXPECT_FALSE(contains(bh_test::read_file(v4), "ghost")) << bh_test::read_file(v4);

  // The NIC setup failing between create and start (the bridge was deleted behind the daemon's
  // back) aborts the start: one error, the container stopped, no veth left.
  ASSERT_TRUE(ctl({"create", "c4", "--template", "busybox", "--net", "lan0"}).ok());
  ASSERT_TRUE(ip_in_netns({"link", "del", "bh-lan0"}).ok());
  r = ctl({"start", "c4"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "bh-lan0")) << r;
  EXPECT_EQ(info("c4")["state"], "stopped");
  EXPECT_FALSE(contains(links(), "bh-c4")) << links();
  // A restarted daemon makes the bridge again; then the container starts.
  kill_daemon();
  start_daemon();
  EXPECT_FALSE(link_line("bh-lan0").empty()) << links();
  r = ctl({"start", "c4"});
  EXPECT_TRUE(r.ok()) << r;
  r = ctl({"exec", "c4", "--", "ping", "-c", "1", "-W", "3", "198.18.77.1"});
  EXPECT_TRUE(r.ok()) << r;
  ASSERT_TRUE(ctl({"destroy", "c4", "--force"}).ok());

  r = ctl({"network", "rm", "lan0"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(link_line("bh-lan0"), "") << links();
}

TEST_F(DaemonNetworkTest, DnsSettingsAndResolvConfDoesNotFollowSymlinks) {
  start_daemon();
  import_busybox();
  auto r = ctl({"network", "create", "lan1", "--bridge", "--ipv4", "198.18.90.1/24", "--dns", "198.18.90.53",
                "--dns", "fd00:53::53"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"network", "create", "lan2", "--bridge", "--ipv4", "198.18.91.1/24", "--dns", "not-an-address"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "network lan2: dns \"not-an-address\"") ||
              contains(r.err, "network lan2: dns not-an-address"))
      << r;
  EXPECT_EQ(bh_test::split_lines(r.err).size(), 1u) << r;
  EXPECT_EQ(link_line("bh-lan2"), "") << links();
  auto list = json::parse(ctl({"network", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["dns"], json({"198.18.90.53", "fd00:53::53"}));

  ASSERT_TRUE(ctl({"create", "c5", "--template", "busybox", "--net", "lan1"}).ok());
  // The container's own layer has /etc/resolv.conf and /etc/hosts as symlinks out of its root:
  // they are replaced, the host's files are not written.
  std::string upper = root_ + "/containers/c5/disk/upper";
  std::string outside = dir_ + "/outside";
  ASSERT_TRUE(bh_test::write_file(outside, "untouched\n"));
  ASSERT_EQ(::mkdir((upper + "/etc").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (upper + "/etc/resolv.conf").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (upper + "/etc/hosts").c_str()), 0);
  r = ctl({"start", "c5"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(bh_test::read_file(outside), "untouched\n");
  r = ctl({"exec", "c5", "--", "cat", "/etc/resolv.conf"});
  EXPECT_TRUE(contains(r.out, "nameserver 198.18.90.53\nnameserver fd00:53::53\n")) << r;
  EXPECT_FALSE(contains(r.out, "nameserver 198.18.90.1")) << r;
  r = ctl({"exec", "c5", "--", "cat", "/etc/hosts"});
  EXPECT_TRUE(contains(r.out, "198.18.90.2\tc5\n")) << r;
  ASSERT_TRUE(ctl({"destroy", "c5", "--force"}).ok());
  ASSERT_TRUE(ctl({"network", "rm", "lan1"}).ok());
}

} // namespace
