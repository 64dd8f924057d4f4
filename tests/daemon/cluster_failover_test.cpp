// Failover in an etcd-backed cluster (issue 14, docs/cluster.md "Leader", "Failover", "Fencing"):
// real daemons on one real etcd, each with --cluster-ttl 3 (the issue's target), so a killed host
// is dead within about 3 s. One leader among three daemons and a new one when it is SIGKILLed; a
// killed host's protected container moves to its standby (whose daemon attempts the activation),
// an unprotected one and one whose standby is offline are reported lost; a container placed on
// another host is fenced at start and while running; an etcd stopped mid-run changes nothing; a
// migration hands the placement over.
#include "cluster_fixture.hpp"

#include <fstream>
#include <iostream>

namespace {

using namespace bh_cluster_test;
using namespace std::chrono_literals;
using bh_test::contains;
using bh_test::json;
using bh_test::read_file;
using bh_test::run_command;

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class DaemonFailoverTest : public DaemonClusterTest {
protected:
  void start_b() { start_daemon(with(cluster_flags("host-b", b_port_), kTtl3)); }
  // Host A pairs with host B (the fixture's daemon) under B's host name: a one-time token from B.
  void pair_a_with_b() {
    auto trusted = ctl({"trust", "add", "host-a"});
    ASSERT_TRUE(trusted.ok()) << trusted;
    std::string out = trusted.out.substr(0, trusted.out.find_last_not_of('\n') + 1);
    std::string token = out.substr(out.rfind('\n') + 1);
    auto paired =
        ctl_a({"remote", "add", "host-b", "127.0.0.1:" + std::to_string(b_port_), "--token", token});
    ASSERT_TRUE(paired.ok()) << paired;
  }
  // Edits a stopped host's container record (the daemon reads it at start): protection as
  // `bulkheadctl protect` records it (the replication branch's command).
  void protect_in_record(const std::string &record, const std::string &standby) {
    auto j = json::parse(read_file(record), nullptr, false);
    ASSERT_TRUE(j.is_object()) << record;
    j["protection"] = {{"standby", standby}, {"interval_ms", 2000}, {"mode", "memory"}};
    std::ofstream(record) << j.dump();
  }
};

TEST_F(DaemonFailoverTest, OneLeaderAmongThreeAndANewOneWhenItIsKilled) {
  start_b();
  start_host("a", kTtl3);
  start_host("c", kTtl3);
  auto all_online_with_leader = [](const json &c) {
    for (const char *h : {"host-a", "host-b", "host-c"})
      if (host_in(c, h)["state"] != "online")
        return false;
    return c["leader"].is_string();
  };
  json c = wait_cluster_on("a", all_online_with_leader, 20s);
  std::string leader = c["leader"];
  // Every host reads the same leader, and only that one's daemon says it leads.
  for (const char *id : {"a", "b", "c"})
    EXPECT_EQ(cluster_on(id)["leader"], leader) << id;
  int leading = 0;
  for (const char *id : {"a", "b", "c"}) {
    std::string log = std::string(id) == "b" ? read_file(dir_ + "/bulkheadd.log") : log_of(id);
    if (contains(log, "host-" + std::string(id) + " is the leader"))
      ++leading;
  }
  EXPECT_EQ(leading, 1) << "exactly one daemon must have been elected";

  // SIGKILL the leader: its lease (TTL 3 s) expires and another host takes over.
  std::string lid = leader.substr(std::string("host-").size());
  auto killed_at = std::chrono::steady_clock::now();
  if (lid == "b")
    kill_daemon();
  else
    end(host(lid).pid, SIGKILL);
  std::string watcher = lid == "a" ? "c" : "a";
  json after = wait_cluster_on(
      watcher, [&](const json &c) { return c["leader"].is_string() && c["leader"] != leader; }, 20s);
  auto took = std::chrono::steady_clock::now() - killed_at;
  std::cout << "new leader " << after["leader"] << " after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_LT(took, 10s);
  EXPECT_EQ(host_in(after, leader)["state"], "offline") << after.dump();
}

TEST_F(DaemonFailoverTest, KilledHostsContainerMovesToItsStandbyTheOthersAreLost) {
  start_b();
  start_host("a", kTtl3);
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  ASSERT_TRUE(ctl_a({"create", "web", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl_a({"create", "solo", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl_a({"create", "far", "--template", "busybox"}).ok());
  // web is protected with host-b as its standby (in its record; a clean stop is not failed over).
  end(host("a").pid, SIGTERM);
  protect_in_record(host("a").dir + "/root/containers/web/container.json", "host-b");
  // far's standby is a host that is not online when A dies.
  protect_in_record(host("a").dir + "/root/containers/far/container.json", "host-c");
  start_host("a", kTtl3);
  json c = wait_cluster(
      false,
      [](const json &c) {
        return placement_in(c, "web")["standby"] == "host-b" && placement_in(c, "solo")["host"] == "host-a" &&
               placement_in(c, "far")["standby"] == "host-c";
      },
      15s);
  EXPECT_EQ(placement_in(c, "web")["host"], "host-a") << c.dump();
  EXPECT_EQ(placement_in(c, "web")["epoch"], 1) << c.dump();
  EXPECT_EQ(placement_in(c, "web")["mode"], "memory") << c.dump();

  // A dies as a whole (no clean stop): B, the only other host, leads and moves web to itself; its
  // daemon attempts the activation (this host holds no replica of it, so activate_replica answers ENOENT) and
  // publishes the failure in the placement.
  auto killed_at = std::chrono::steady_clock::now();
  end(host("a").pid, SIGKILL);
  c = wait_cluster(
      false,
      [](const json &c) {
        json w = placement_in(c, "web");
        return w["host"] == "host-b" && w.value("attempts", 0) >= 1 &&
               placement_in(c, "solo")["lost"] == true && placement_in(c, "far")["lost"] == true;
      },
      20s);
  auto took = std::chrono::steady_clock::now() - killed_at;
  std::cout << "placement moved and activation attempted after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_GE(took, 2s) << "A's lease must expire first";
  json web = placement_in(c, "web");
  EXPECT_EQ(web["epoch"], 2) << web.dump();
  EXPECT_EQ(web["standby"], "") << web.dump();
  EXPECT_EQ(web["failed_over_from"], "host-a") << web.dump();
  EXPECT_TRUE(contains(web.value("error", ""), "holds no replica")) << web.dump();
  EXPECT_EQ(host_in(c, "host-a")["state"], "offline") << c.dump();
  EXPECT_EQ(c["leader"], "host-b") << c.dump();
  json solo = placement_in(c, "solo");
  EXPECT_EQ(solo["host"], "host-a") << solo.dump();
  EXPECT_TRUE(contains(solo.value("lost_reason", ""), "no standby")) << solo.dump();
  json far = placement_in(c, "far");
  EXPECT_EQ(far["host"], "host-a") << far.dump();
  EXPECT_EQ(far["lost"], true) << far.dump();
  EXPECT_TRUE(contains(far.value("lost_reason", ""), "its standby host-c is not online")) << far.dump();
  EXPECT_TRUE(contains(read_file(dir_ + "/bulkheadd.log"), "activating web here failed"));
  auto table = ctl({"cluster", "list"});
  EXPECT_TRUE(contains(table.out, "failed over from host-a; activation failed")) << table;
  EXPECT_TRUE(contains(table.out, "lost: host host-a died")) << table;

  // A comes back: web is placed on B, so A fences its copy (never starts it); solo is A's again.
  start_host("a", kTtl3);
  EXPECT_EQ(json::parse(ctl_a({"info", "web", "--json"}).out)["fenced_by"], "host-b");
  auto refused = ctl_a({"start", "web"});
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(contains(refused.err, "fenced")) << refused;
  wait_cluster(
      false, [](const json &c) { return !placement_in(c, "solo").contains("lost"); }, 10s);
  // Destroying the fenced copy leaves B's placement alone.
  ASSERT_TRUE(ctl_a({"destroy", "web"}).ok());
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(etcd_json("/bulkhead/placement/web")["host"], "host-b");
}

TEST_F(DaemonFailoverTest, PlacedElsewhereIsFencedAtStartAndWhileRunning) {
  start_b();
  import_busybox();
  auto made = ctl({"create", "f1", "--template", "busybox", "--start", "--restart", "always"});
  ASSERT_TRUE(made.ok()) << made;
  ASSERT_TRUE(ctl({"create", "f2", "--template", "busybox", "--start", "--onboot"}).ok());
  // f3: onboot, stopped when the daemon stops: onboot would start it at the next daemon start.
  ASSERT_TRUE(ctl({"create", "f3", "--template", "busybox", "--start", "--onboot"}).ok());
  wait_info("f3", [](const json &i) { return i["state"] == "running"; });
  ASSERT_TRUE(ctl({"stop", "f3"}).ok());
  json f3_exit = wait_info("f3", [](const json &i) { return i["state"] == "stopped"; })["last_exit"];
  int pid1 = wait_info("f1", [](const json &i) { return i["state"] == "running"; })["pid"];
  wait_info("f2", [](const json &i) { return i["state"] == "running"; });
  wait_cluster(
      false, [](const json &c) { return placement_in(c, "f1")["restart"] == true; }, 10s);
  // The daemon stops (its containers run on); meanwhile the cluster places f1 on host-z.
  end(daemon_pid_, SIGTERM);
  ASSERT_EQ(::kill(pid1, 0), 0);
  ASSERT_TRUE(etcdctl({"put", "/bulkhead/placement/f3", R"({"host":"host-z","epoch":2})"}).ok());
  ASSERT_TRUE(
      etcdctl({"put", "/bulkhead/placement/f1", R"({"host":"host-z","epoch":2,"failed_over_from":"host-b"})"})
          .ok());
  start_b();
  // Stopped before anything could restart it (restart policy always), and refused on start.
  json i = info("f1");
  EXPECT_EQ(i["state"], "stopped") << i.dump();
  EXPECT_EQ(i["fenced_by"], "host-z") << i.dump();
  EXPECT_NE(::kill(pid1, 0), 0) << "the fenced copy's init must be gone";
  auto h = http("PUT", "/1.0/containers/f1/state", R"({"action":"start"})");
  EXPECT_EQ(h.status, 409) << h.body.dump();
  EXPECT_TRUE(contains(h.body.dump(), "host-z")) << h.body.dump();
  std::this_thread::sleep_for(2s); // the restart policy, onboot and the cluster thread had their chance
  EXPECT_EQ(info("f1")["state"], "stopped");
  // Fenced before onboot ran: onboot's start was refused, f3 never ran again (no new exit).
  json f3 = info("f3");
  EXPECT_EQ(f3["fenced_by"], "host-z") << f3.dump();
  EXPECT_EQ(f3["state"], "stopped") << f3.dump();
  EXPECT_EQ(f3["last_exit"], f3_exit) << f3.dump();
  std::string log = read_file(dir_ + "/bulkheadd.log");
  EXPECT_TRUE(contains(log, "onboot start of f3 failed: container \"f3\" is fenced")) << log;
  EXPECT_EQ(etcd_json("/bulkhead/placement/f1")["host"], "host-z") << "never reclaimed";

  // While running: f2's placement moves away (a partition healed after a failover): fenced too.
  EXPECT_EQ(info("f2")["state"], "running");
  ASSERT_TRUE(etcdctl({"put", "/bulkhead/placement/f2", R"({"host":"host-z","epoch":2})"}).ok());
  json f2 = wait_info(
      "f2", [](const json &i) { return i.value("fenced_by", "") == "host-z"; }, 10s);
  f2 = wait_info(
      "f2", [](const json &i) { return i["state"] == "stopped"; }, 20s);
  // Given back to this host (the placement names it again): it may start again.
  ASSERT_TRUE(etcdctl({"put", "/bulkhead/placement/f2", R"({"host":"host-b","epoch":3})"}).ok());
  wait_info(
      "f2", [](const json &i) { return !i.contains("fenced_by"); }, 10s);
  EXPECT_TRUE(ctl({"start", "f2"}).ok());

  // destroy works on a fenced copy and leaves the owner's placement alone.
  ASSERT_TRUE(ctl({"destroy", "f1"}).ok());
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(etcd_json("/bulkhead/placement/f1")["host"], "host-z");
  // A name another host owns cannot be created here.
  auto taken = ctl({"create", "f1", "--template", "busybox"});
  EXPECT_FALSE(taken.ok());
  EXPECT_TRUE(contains(taken.err, "host host-z owns it")) << taken;
  // Destroying its own container removes its placement.
  ASSERT_TRUE(ctl({"destroy", "f2", "--force"}).ok());
  EXPECT_TRUE(etcd_json("/bulkhead/placement/f2").is_null() ||
              etcdctl({"get", "/bulkhead/placement/f2"}).out.empty());
}

TEST_F(DaemonFailoverTest, EtcdStoppedMidRunChangesNothing) {
  start_b();
  start_host("a", kTtl3);
  import_busybox();
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  ASSERT_TRUE(ctl({"create", "kb", "--template", "busybox", "--start"}).ok());
  ASSERT_TRUE(ctl_a({"create", "ka", "--template", "busybox", "--start"}).ok());
  json before = wait_cluster(
      false,
      [](const json &c) {
        return has_container(host_in(c, "host-a"), "ka", "running") &&
               has_container(host_in(c, "host-b"), "kb", "running") && !placement_in(c, "ka").is_null() &&
               !placement_in(c, "kb").is_null() && c["leader"].is_string();
      },
      20s);
  int pid_b = info("kb")["pid"];
  // etcd gone for three TTLs: the hosts cannot renew their leases; they keep their containers and
  // act on nothing.
  end(etcd_pid_, SIGTERM);
  std::this_thread::sleep_for(9s);
  EXPECT_EQ(info("kb")["state"], "running");
  EXPECT_EQ(info("kb")["pid"], pid_b);
  EXPECT_FALSE(info("kb").contains("fenced_by"));
  auto ia = json::parse(ctl_a({"info", "ka", "--json"}).out);
  EXPECT_EQ(ia["state"], "running") << ia.dump();
  EXPECT_EQ(http("GET", "/1.0/cluster").status, 500);
  // etcd back: the hosts register again, and the placements are as they were.
  start_etcd();
  json after = wait_cluster(
      false,
      [](const json &c) {
        return host_in(c, "host-a")["state"] == "online" && host_in(c, "host-b")["state"] == "online";
      },
      20s);
  std::this_thread::sleep_for(3s); // a leader's rounds after the return
  after = cluster_of(false);
  for (const char *n : {"ka", "kb"}) {
    EXPECT_EQ(placement_in(after, n), placement_in(before, n)) << n << ": " << after.dump();
  }
  EXPECT_EQ(info("kb")["state"], "running");
  EXPECT_FALSE(info("kb").contains("fenced_by"));
  EXPECT_EQ(json::parse(ctl_a({"info", "ka", "--json"}).out)["state"], "running");
}

// Migration hands the placement over: the target takes it (from the value naming the source) once
// the container exists there, the source's destroy leaves it, and neither copy is fenced.
TEST_F(DaemonFailoverTest, MigrationHandsThePlacementOver) {
  start_b();
  start_host("a", kTtl3);
  import_busybox();
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  ASSERT_NO_FATAL_FAILURE(pair_a_with_b());
  ASSERT_TRUE(ctl_a({"create", "mv", "--template", "busybox", "--start"}).ok());
  wait_cluster(
      false, [](const json &c) { return placement_in(c, "mv")["host"] == "host-a"; }, 10s);
  auto moved = ctl_a({"migrate", "mv", "host-b", "--cold"});
  ASSERT_TRUE(moved.ok()) << moved << log_of("a") << read_file(dir_ + "/bulkheadd.log");
  json i = info("mv");
  EXPECT_EQ(i["state"], "running") << i.dump();
  EXPECT_FALSE(i.contains("fenced_by")) << i.dump();
  EXPECT_FALSE(ctl_a({"info", "mv"}).ok()) << "the source's copy is gone";
  json p = etcd_json("/bulkhead/placement/mv");
  EXPECT_EQ(p["host"], "host-b") << p.dump();
  EXPECT_EQ(p["epoch"], 2) << p.dump();
  std::this_thread::sleep_for(2s); // rounds of both hosts
  EXPECT_EQ(etcd_json("/bulkhead/placement/mv")["host"], "host-b");
  EXPECT_EQ(info("mv")["state"], "running");
  EXPECT_FALSE(contains(log_of("a") + read_file(dir_ + "/bulkheadd.log"), "fencing the copy here"));
}

TEST_F(DaemonFailoverTest, EvacuateWithoutRemoteGoesToTheClustersPairedHosts) {
  start_b();
  start_host("a", kTtl3);
  start_host("c", kTtl3); // online, but host-a is not paired with it: never a target
  import_busybox();
  ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
  for (const char *n : {"e1", "e2"})
    ASSERT_TRUE(ctl_a({"create", n, "--template", "busybox", "--start"}).ok()) << n;
  wait_cluster(
      false,
      [](const json &c) {
        return placement_in(c, "e1")["host"] == "host-a" && placement_in(c, "e2")["host"] == "host-a";
      },
      10s);
  // Not paired with any online host yet: each container is named with why, nothing moves.
  auto none = ctl_a({"host", "evacuate", "--cold"});
  EXPECT_FALSE(none.ok()) << none;
  EXPECT_TRUE(contains(none.out + none.err, "no online host of the cluster is paired")) << none;
  EXPECT_TRUE(contains(none.out + none.err, "host-c")) << none;
  for (const char *n : {"e1", "e2"})
    EXPECT_EQ(json::parse(ctl_a({"info", n, "--json"}).out)["state"], "running") << n;

  ASSERT_NO_FATAL_FAILURE(pair_a_with_b());
  auto moved = ctl_a({"host", "evacuate", "--cold", "--json"});
  ASSERT_TRUE(moved.ok()) << moved << log_of("a");
  json m = json::parse(moved.out, nullptr, false);
  ASSERT_TRUE(m.is_object()) << moved;
  EXPECT_EQ(m["by_cluster"], true) << m.dump();
  EXPECT_EQ(m["moved"], 2) << m.dump();
  for (const auto &c : m["containers"])
    EXPECT_EQ(c["remote"], "host-b") << m.dump();
  for (const char *n : {"e1", "e2"}) {
    EXPECT_EQ(info(n)["state"], "running") << n;
    EXPECT_FALSE(ctl_a({"info", n}).ok()) << n << ": the source's copy is gone";
    EXPECT_EQ(etcd_json(std::string("/bulkhead/placement/") + n)["host"], "host-b") << n;
  }
}

} // namespace
