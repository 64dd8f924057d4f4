// bulkheadd --cluster (issue 14, docs/cluster.md "Hosts in the cluster"): two real daemons join one
// real etcd (Debian's etcd-server, started here on free 127.0.0.1 ports, as
// tests/cluster/etcd_client_test.cpp does); each lists both hosts with their containers; a host
// killed with SIGKILL reads offline once its lease's TTL ran out and online again when it restarts;
// a clean stop reads "stopped" at once; a daemon without --cluster answers {"enabled": false}; bad
// flags, and an etcd that cannot be reached, stop the daemon before it starts.
#include "cluster_fixture.hpp"

#include <cstring>

namespace {

using namespace bh_cluster_test;
using namespace std::chrono_literals;
using bh_test::contains;
using bh_test::json;
using bh_test::read_file;
using bh_test::run_command;

TEST_F(DaemonClusterTest, TwoHostsJoinDropOutWhenKilledAndComeBack) {
  start_daemon(cluster_flags("host-b", b_port_));
  start_a();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "cb", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  ASSERT_TRUE(ctl_a({"create", "ca", "--template", "busybox"}).ok());

  // Either host answers for both, each with its own containers (published within a few seconds).
  for (bool from_a : {true, false}) {
    auto both = [](const json &c) {
      return has_container(host_in(c, "host-a"), "ca", "stopped") &&
             has_container(host_in(c, "host-b"), "cb", "stopped");
    };
    json c = wait_cluster(from_a, both, 15s);
    EXPECT_EQ(c["enabled"], true) << c.dump();
    EXPECT_EQ(c["host"], from_a ? "host-a" : "host-b");
    EXPECT_EQ(host_in(c, "host-a")["state"], "online") << c.dump();
    EXPECT_EQ(host_in(c, "host-b")["state"], "online") << c.dump();
    EXPECT_EQ(host_in(c, "host-a")["address"], "127.0.0.1:" + std::to_string(host("a").port));
    EXPECT_EQ(host_in(c, "host-b")["containers"].size(), 1u) << c.dump();
  }
  // The table.
  auto table = ctl({"cluster", "list"});
  ASSERT_TRUE(table.ok()) << table;
  EXPECT_TRUE(contains(table.out, "HOST")) << table;
  EXPECT_TRUE(contains(table.out, "ca=stopped")) << table;
  EXPECT_TRUE(contains(table.out, "cb=stopped")) << table;

  // A container destroyed on A leaves A's list.
  ASSERT_TRUE(ctl_a({"destroy", "ca"}).ok());
  wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["containers"] == json::array(); }, 15s);

  // SIGKILL: no revoke; the lease expires (TTL 10 s) and B lists A as offline (a member without a
  // live host key), without its containers.
  auto killed_at = std::chrono::steady_clock::now();
  end(host("a").pid, SIGKILL);
  json dead = wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["state"] == "offline"; }, 20s);
  auto gone_after = std::chrono::steady_clock::now() - killed_at;
  EXPECT_GE(gone_after, 5s) << "A's keys should live until its lease expires, not vanish at once";
  EXPECT_EQ(host_in(dead, "host-a")["containers"], json::array()) << dead.dump();
  EXPECT_EQ(host_in(dead, "host-b")["state"], "online") << dead.dump();

  // Restarted, A registers again with a fresh lease.
  start_a();
  json back = wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["state"] == "online"; }, 15s);
  EXPECT_EQ(host_in(back, "host-a")["address"], "127.0.0.1:" + std::to_string(host("a").port));

  // A clean stop revokes the lease and says so: A reads "stopped" at once (well within the TTL),
  // which the leader does not fail over (docs/cluster.md "Failover").
  auto stopped_at = std::chrono::steady_clock::now();
  stop_a();
  wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["state"] == "stopped"; }, 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 5s);
}

TEST_F(DaemonClusterTest, WithoutClusterTheAnswerIsDisabled) {
  start_daemon();
  auto h = http("GET", "/1.0/cluster");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, json({{"enabled", false}})) << h.body.dump();
  auto r = ctl({"cluster", "list"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "not in a cluster")) << r;
  // What needs a cluster says so, with a 400.
  for (const char *path : {"/1.0/cluster/tokens", "/1.0/cluster/join", "/1.0/cluster/rebalance"}) {
    json body = std::string(path) == "/1.0/cluster/join" ? json{{"token", "x"}} : json{{"name", "host-a"}};
    if (std::string(path) == "/1.0/cluster/rebalance")
      body = json::object();
    auto refused = http("POST", path, body.dump());
    EXPECT_EQ(refused.status, 400) << path << " " << refused.body.dump();
    EXPECT_TRUE(contains(refused.body.dump(), "in no cluster")) << path << " " << refused.body.dump();
  }
}

// With --cluster the daemon must read the placements before it may run anything (fencing), so an
// etcd it cannot reach at start is an error naming the endpoint and the errno text; the containers
// that run meanwhile are untouched (they belong to their monitors).
TEST_F(DaemonClusterTest, EtcdUnreachableAtStartIsAClearErrorAndContainersRunOn) {
  start_daemon(cluster_flags("host-b", b_port_));
  import_busybox();
  ASSERT_TRUE(ctl({"create", "cb", "--template", "busybox", "--start"}).ok());
  int pid = wait_info("cb", [](const json &i) { return i["state"] == "running"; })["pid"];
  ASSERT_GT(pid, 0);
  end(daemon_pid_, SIGTERM);
  end(etcd_pid_, SIGTERM);
  std::vector<std::string> argv = {
      bh_test::bulkheadd_path(), "--root",       root_,       "--socket", socket_,
      "--cgroup-parent",         cgroup_parent_, "--no-lxcfs"};
  for (auto &f : cluster_flags("host-b", b_port_))
    argv.push_back(f);
  bh_test::CommandOptions o;
  o.timeout = 30s;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_command(argv, o);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s) << "an unreachable etcd must fail fast";
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "joining the cluster at " + etcd_url_)) << r;
  EXPECT_TRUE(contains(r.err, std::strerror(ECONNREFUSED))) << r;
  EXPECT_EQ(::kill(pid, 0), 0) << "the container's init must run on: " << r;
  // etcd back: the daemon starts, re-adopts the container and joins with it.
  start_etcd();
  start_daemon(cluster_flags("host-b", b_port_));
  EXPECT_EQ(info("cb")["pid"], pid);
  json c = wait_cluster(
      false, [](const json &c) { return has_container(host_in(c, "host-b"), "cb", "running"); }, 20s);
  EXPECT_EQ(host_in(c, "host-b")["state"], "online") << c.dump();
}

TEST_F(DaemonClusterTest, BadFlagsAreRefusedBeforeTheDaemonStarts) {
  auto run = [&](const std::vector<std::string> &extra) {
    std::vector<std::string> argv = {
        bh_test::bulkheadd_path(), "--root", root_, "--socket", socket_, "--no-lxcfs"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    bh_test::CommandOptions o;
    o.timeout = 10s;
    return run_command(argv, o);
  };
  auto no_name = run({"--cluster", etcd_url_, "--listen", "127.0.0.1:1"});
  EXPECT_EQ(no_name.exit_code, 1) << no_name;
  EXPECT_TRUE(contains(no_name.err, "--cluster needs --host-name")) << no_name;
  auto no_listen = run({"--cluster", etcd_url_, "--host-name", "h"});
  EXPECT_EQ(no_listen.exit_code, 1) << no_listen;
  EXPECT_TRUE(contains(no_listen.err, "--listen")) << no_listen;
  for (const std::string bad : {"etcd:2379", "http://127.0.0.1", "http://127.0.0.1:99999", "http://a:1,"}) {
    auto r = run({"--cluster", bad, "--host-name", "h", "--listen", "127.0.0.1:1"});
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r;
    EXPECT_TRUE(contains(r.err, "bulkheadd: --cluster " + bad + ": etcd endpoint")) << r;
  }
  EXPECT_FALSE(bh_test::path_exists(socket_)) << "the daemon must not have started";
}

} // namespace
