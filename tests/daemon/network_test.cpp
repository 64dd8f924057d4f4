// Managed networks in bulkheadd (issue 12 item 1): the daemon runs in a network namespace of the
// test's own (DaemonTest::use_private_netns), so bridges, veths and container traffic never touch
// the host's network; addresses are from 198.18.0.0/15 and fd00::/8.
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
  ASSERT_TRUE(ctl({"network", "create", "lan0", "--bridge", "--ipv4", "198.18.77.1/24"}).ok());
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

} // namespace
