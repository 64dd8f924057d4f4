// One trust for the whole cluster (issue 14's join token, docs/remotes.md "One trust for the whole
// cluster"): real daemons on one real etcd. The first `cluster token` makes the cluster's key; a
// host that joins with a token made for it (by any member) holds the key and is trusted by every
// member, as a peer and as a remote by its host name, with no pairing: a cold migration runs from
// a host that joined to another that joined, then on to the host that made the key. A token is
// bound to its host and its purpose; an entry put into etcd without the key is not trusted; a host
// without the key can neither invite nor be reached; the key survives a restart.
#include "cluster_fixture.hpp"

namespace {

using namespace bh_cluster_test;
using namespace std::chrono_literals;
using bh_test::contains;
using bh_test::json;
using bh_test::run_command;

class DaemonClusterTrustTest : public DaemonClusterTest {
protected:
  void start_b() { start_daemon(cluster_flags("host-b", b_port_)); }
  static std::vector<std::string> members(const json &cluster) {
    std::vector<std::string> out;
    if (cluster.is_object() && cluster["trust"].is_object())
      for (const auto &m : cluster["trust"]["members"])
        out.push_back(m.get<std::string>());
    return out;
  }
};

TEST_F(DaemonClusterTrustTest, JoinedHostsTrustEachOtherWithoutPairing) {
  start_b();
  start_a();
  start_host("c");

  // No key anywhere yet: nothing to join, and every host still trusts nobody.
  json before = cluster_on("a");
  EXPECT_TRUE(before["trust"]["key_id"].is_null()) << before.dump();
  EXPECT_TRUE(members(before).empty()) << before.dump();

  // B's first token makes the cluster's key and claims its id in etcd.
  std::string for_a = token_from("b", "host-a");
  ASSERT_EQ(for_a.rfind("bh1:sha256:", 0), 0u) << for_a;
  json on_b = cluster_on("b");
  ASSERT_TRUE(on_b["trust"]["key_id"].is_string()) << on_b.dump();
  EXPECT_EQ(etcd_json("/bulkhead/trust-key")["id"], on_b["trust"]["key_id"]);
  EXPECT_EQ(members(on_b), std::vector<std::string>{"host-b"});

  // A token is bound to the host it was made for: C cannot use A's, and A's stays valid.
  auto stolen = ctl_on("c", {"cluster", "join", "--token", for_a});
  EXPECT_FALSE(stolen.ok()) << stolen;
  EXPECT_TRUE(contains(stolen.err, "made for host \"host-a\", not \"host-c\"")) << stolen;
  // A's join finds B's address in etcd from the token's certificate.
  auto joined = ctl_a({"cluster", "join", "--token", for_a});
  ASSERT_TRUE(joined.ok()) << joined << log_of("a") << bh_test::read_file(dir_ + "/bulkheadd.log");
  EXPECT_TRUE(contains(joined.out, "through host-b")) << joined;
  EXPECT_TRUE(contains(joined.out, "trusted hosts: host-a, host-b")) << joined;
  auto again = ctl_a({"cluster", "join", "--token", for_a});
  EXPECT_FALSE(again.ok()) << again;
  EXPECT_TRUE(contains(again.err, "holds the cluster's key already")) << again;

  // Any member invites: A makes C's token. A pairing token's place (`remote add`) refuses it and
  // leaves it pending; then C joins with it.
  std::string for_c = token_from("a", "host-c");
  auto misused = ctl_on(
      "c", {"remote", "add", "host-a", "127.0.0.1:" + std::to_string(host("a").port), "--token", for_c});
  EXPECT_FALSE(misused.ok()) << misused;
  EXPECT_TRUE(contains(misused.err, "use it with `bulkheadctl cluster join`")) << misused;
  auto c_joined = ctl_on("c", {"cluster", "join", "--token", for_c});
  ASSERT_TRUE(c_joined.ok()) << c_joined << log_of("c") << log_of("a");
  EXPECT_TRUE(contains(c_joined.out, "through host-a")) << c_joined;
  auto reused = ctl({"cluster", "join", "--token", for_c});
  EXPECT_FALSE(reused.ok()) << reused;

  // Every member sees the three, each with its entry verified under the key.
  for (const char *id : {"a", "b", "c"}) {
    json c = wait_cluster_on(
        id, [](const json &j) { return members(j).size() == 3; }, 15s);
    EXPECT_EQ(members(c), (std::vector<std::string>{"host-a", "host-b", "host-c"})) << id << c.dump();
    EXPECT_EQ(host_in(c, "host-c")["trusted"], true) << c.dump();
  }

  // An entry put into etcd without the key is never trusted, whatever it claims.
  ASSERT_TRUE(etcdctl({"put", "/bulkhead/trust/host-x",
                       json{{"name", "host-x"},
                            {"address", "127.0.0.1:1"},
                            {"fingerprint", "sha256:" + std::string(64, '0')},
                            {"mac", std::string(64, '0')}}
                           .dump()})
                  .ok());
  auto forged = ctl_on("c", {"migrate", "nothing-here", "host-x", "--cold"});
  EXPECT_FALSE(forged.ok()) << forged;
  EXPECT_TRUE(contains(forged.err, "no remote named \"host-x\"")) << forged;
  EXPECT_EQ(members(cluster_on("c")).size(), 3u);

  // The trust at work: C and A never paired, B paired with nobody. C migrates to A by A's host
  // name, then A to B.
  import_busybox();
  for (const char *id : {"a", "c"})
    ASSERT_TRUE(ctl_on(id, {"template", "import", "busybox", busybox_rootfs_}).ok()) << id;
  ASSERT_TRUE(ctl_on("c", {"create", "mv", "--template", "busybox", "--start"}).ok());
  auto to_a = ctl_on("c", {"migrate", "mv", "host-a", "--cold"});
  ASSERT_TRUE(to_a.ok()) << to_a << log_of("c") << log_of("a");
  EXPECT_EQ(json::parse(ctl_a({"info", "mv", "--json"}).out)["state"], "running");
  auto to_b = ctl_a({"migrate", "mv", "host-b", "--cold"});
  ASSERT_TRUE(to_b.ok()) << to_b << log_of("a");
  EXPECT_EQ(info("mv")["state"], "running");
  EXPECT_FALSE(ctl_a({"info", "mv"}).ok());
  EXPECT_TRUE(ctl({"remote", "list", "--json"}).out.find("host-") == std::string::npos)
      << "B paired with nobody: " << ctl({"remote", "list", "--json"});

  // The key outlives a restart: A comes back a member, its entry published again.
  stop_a();
  ASSERT_TRUE(etcdctl({"del", "/bulkhead/trust/host-a"}).ok());
  start_a();
  json after = wait_cluster_on(
      "b", [](const json &j) { return host_in(j, "host-a")["trusted"] == true; }, 20s);
  EXPECT_EQ(cluster_on("a")["trust"]["key_id"], on_b["trust"]["key_id"]) << after.dump();
}

TEST_F(DaemonClusterTrustTest, AHostWithoutTheKeyCanNeitherInviteNorBeReached) {
  start_b();
  start_a();
  std::string for_c = token_from("b", "host-c");
  ASSERT_FALSE(for_c.empty());
  // A holds no key while the cluster has one: it cannot make one of its own.
  auto own = ctl_a({"cluster", "token", "host-c"});
  EXPECT_FALSE(own.ok()) << own;
  EXPECT_TRUE(contains(own.err, "that this host does not hold")) << own;
  EXPECT_TRUE(contains(own.err, "cluster join")) << own;
  // ... and it is no member: B does not trust it, and it cannot name B.
  json c = cluster_on("b");
  EXPECT_EQ(host_in(c, "host-a")["trusted"], false) << c.dump();
  auto reach = ctl_a({"migrate", "nothing-here", "host-b", "--cold"});
  EXPECT_FALSE(reach.ok()) << reach;
  EXPECT_TRUE(contains(reach.err, "no remote named \"host-b\"")) << reach;
  // Bad input is one clear line each, and changes nothing.
  auto garbage = ctl_a({"cluster", "join", "--token", "bh1:nonsense"});
  EXPECT_FALSE(garbage.ok());
  EXPECT_TRUE(contains(garbage.err, "not a bulkhead trust token")) << garbage;
  auto self = ctl({"cluster", "token", "host-b"});
  EXPECT_FALSE(self.ok());
  EXPECT_TRUE(contains(self.err, "is this host")) << self;
  auto nowhere = ctl_a({"cluster", "join", "--token", for_c, "--address", "127.0.0.1:1"});
  EXPECT_FALSE(nowhere.ok());
  EXPECT_TRUE(contains(nowhere.err, "127.0.0.1:1")) << nowhere;
  EXPECT_TRUE(cluster_on("a")["trust"]["key_id"].is_null());
  // A single host (no --cluster) has no cluster trust to offer.
}

// `cluster rebalance` (docs/migration.md "Rebalancing a cluster") over hosts of the cluster's trust:
// host A holds four containers, B and C none; A sheds its stopped ones first, one to each, and keeps
// two (at most one above the least loaded); a second rebalance has nothing to move.
TEST_F(DaemonClusterTrustTest, RebalanceShedsThisHostsSurplusOverTheTrustedHosts) {
  start_b();
  start_a();
  start_host("c");
  ASSERT_NO_FATAL_FAILURE(join_trust("a"));
  ASSERT_NO_FATAL_FAILURE(join_trust("c"));
  import_busybox();
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  for (const char *n : {"r1", "r2"})
    ASSERT_TRUE(ctl_a({"create", n, "--template", "busybox", "--start"}).ok()) << n;
  for (const char *n : {"s1", "s2"})
    ASSERT_TRUE(ctl_a({"create", n, "--template", "busybox"}).ok()) << n;
  // A's copy of the trust (rereads within a second) and etcd's view of A's containers.
  wait_cluster_on(
      "a",
      [](const json &c) {
        return host_in(c, "host-a")["containers"].size() == 4 && host_in(c, "host-c")["trusted"] == true;
      },
      15s);

  auto dry = ctl_a({"cluster", "rebalance", "--dry-run", "--json"});
  ASSERT_TRUE(dry.ok()) << dry << log_of("a");
  json d = json::parse(dry.out, nullptr, false);
  ASSERT_TRUE(d.is_object()) << dry;
  EXPECT_EQ(d["rebalance"], true) << d.dump();
  EXPECT_EQ(d["would_move"], 2) << d.dump();
  ASSERT_EQ(d["containers"].size(), 2u) << d.dump();
  EXPECT_EQ(d["containers"][0]["name"], "s1") << d.dump();
  EXPECT_EQ(d["containers"][0]["remote"], "host-b") << d.dump();
  EXPECT_EQ(d["containers"][1]["name"], "s2") << d.dump();
  EXPECT_EQ(d["containers"][1]["remote"], "host-c") << d.dump();
  EXPECT_TRUE(ctl_a({"info", "s1"}).ok()) << "a dry run moves nothing";

  auto moved = ctl_a({"cluster", "rebalance", "--cold"});
  ASSERT_TRUE(moved.ok()) << moved << log_of("a");
  EXPECT_TRUE(contains(moved.out, "rebalanced host-a to the cluster's hosts: 2 moved, 0 failed")) << moved;
  EXPECT_EQ(info("s1")["state"], "stopped");
  EXPECT_EQ(json::parse(ctl_on("c", {"info", "s2", "--json"}).out)["state"], "stopped");
  for (const char *n : {"s1", "s2"})
    EXPECT_FALSE(ctl_a({"info", n}).ok()) << n << ": moved away";
  for (const char *n : {"r1", "r2"})
    EXPECT_EQ(json::parse(ctl_a({"info", n, "--json"}).out)["state"], "running") << n << " stays, running";
  EXPECT_EQ(etcd_json("/bulkhead/placement/s1")["host"], "host-b");
  EXPECT_EQ(etcd_json("/bulkhead/placement/s2")["host"], "host-c");
  // Creates go on during and after a rebalance (no evacuating state).
  EXPECT_EQ(json::parse(ctl_a({"host", "info", "--json"}).out)["state"], "normal");

  // Once etcd lists what each host holds now (each host publishes its own within a second).
  wait_cluster_on(
      "a",
      [](const json &c) {
        return host_in(c, "host-a")["containers"].size() == 2 &&
               host_in(c, "host-b")["containers"].size() == 1 &&
               host_in(c, "host-c")["containers"].size() == 1;
      },
      15s);
  auto again = ctl_a({"cluster", "rebalance"});
  ASSERT_TRUE(again.ok()) << again;
  EXPECT_TRUE(contains(again.out, "nothing to move: host-a holds at most one container more")) << again;
  auto bad = ctl_a({"cluster", "rebalance", "--parallel", "9"});
  EXPECT_FALSE(bad.ok());
}

} // namespace
