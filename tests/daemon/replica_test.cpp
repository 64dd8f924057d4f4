// Continuous replication (`bulkheadctl protect`, daemon/replicator.cpp and daemon/daemon_replica.cpp)
// between two daemons paired over TLS on this host: A (host-a) runs the container, B (host-b, the
// fixture's daemon) is its standby. CRIU does not work on this host's kernel, so these tests use
// --mode disk; memory mode runs in the VM (tests/multihost/vm-replicate.sh).
#include <filesystem>
#include <set>
#include <sstream>

#include "remote_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bh_test::CommandResult;
using bh_test::contains;
using bh_test::DaemonRemoteTest;
using bh_test::json;
using bh_test::kAddressB;
using bh_test::read_file;
using bh_test::run_command;

class DaemonReplicaTest : public DaemonRemoteTest {
protected:
  // A and B paired (A's remote is named as B's --host-name), busybox on A only: the first set
  // carries the template to B.
  void pair_and_make(const std::string &name, bool running) {
    start_b();
    start_a();
    auto added = ctl_a({"remote", "add", "host-b", kAddressB, "--token", token_for("host-a")});
    ASSERT_TRUE(added.ok()) << added;
    auto imported = ctl_a({"template", "import", "busybox", busybox_rootfs_});
    ASSERT_TRUE(imported.ok()) << imported;
    // Unprivileged, the default: host-b gives it a range of its own at activation.
    auto made = ctl_a({"create", name, "--template", "busybox"});
    ASSERT_TRUE(made.ok()) << made;
    write_a_file(name, "v1");
    if (running) {
      auto s = ctl_a({"start", name});
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  void write_a_file(const std::string &name, const std::string &text) {
    ASSERT_TRUE(bh_test::write_file(a_dir_ + "/root/containers/" + name + "/disk/upper/state.txt", text));
  }
  // A stopped container with a file of MIB random MiB (so a set stays on the wire long enough to be
  // caught), protected in disk mode every second; returns once its first set arrived.
  void protect_with_large_file(const std::string &name, int mib) {
    pair_and_make(name, false);
    auto big = run_command({"dd", "if=/dev/urandom",
                            "of=" + a_dir_ + "/root/containers/" + name + "/disk/upper/big.bin", "bs=1M",
                            "count=" + std::to_string(mib), "status=none"});
    ASSERT_TRUE(big.ok()) << big;
    ASSERT_TRUE(ctl_a({"protect", name, "--standby", "host-b", "--interval", "1s", "--mode", "disk"}).ok());
    wait_replication(
        name, [](const json &r) { return r.value("syncs", 0) >= 1; }, 120s);
  }
  // B's staging directories of NAME: the sets arriving now.
  std::vector<std::string> arriving_sets(const std::string &name) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto &f : std::filesystem::directory_iterator(root_ + "/replicas/" + name, ec))
      if (f.path().filename().string().rfind(".staging-", 0) == 0)
        out.push_back(f.path().string());
    return out;
  }
  json info_a(const std::string &name) {
    auto r = ctl_a({"info", name, "--json"});
    return json::parse(r.out, nullptr, false);
  }
  // Polls A's info of NAME until pred holds on its "replication" object.
  json wait_replication(const std::string &name, const std::function<bool(const json &)> &pred,
                        std::chrono::seconds timeout = 60s) {
    json last;
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
      last = info_a(name);
      if (last.is_object() && last.contains("replication") && pred(last["replication"]))
        return last["replication"];
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "replication of " << name << " never reached the expected state: " << last.dump();
    return last.value("replication", json());
  }
  // `replica activate NAME` on B. A's rounds go on while it runs (the source is alive in these
  // tests), so B may answer "busy" while a set arrives: as the message says, try again.
  CommandResult activate_on_b(const std::string &name, bool json_out = false) {
    CommandResult r;
    for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;) {
      r = json_out ? ctl({"replica", "activate", name, "--json"}) : ctl({"replica", "activate", name});
      if (r.ok() || !contains(r.err, "is busy"))
        break;
      std::this_thread::sleep_for(200ms);
    }
    return r;
  }
  json replicas_b() {
    auto r = ctl({"replica", "list", "--json"});
    EXPECT_TRUE(r.ok()) << r;
    return json::parse(r.out, nullptr, false);
  }
  json http_a(const std::string &method, const std::string &path, const std::string &body = "") {
    std::vector<std::string> argv = {"curl",
                                     "-sS",
                                     "-w",
                                     "\n%{http_code}",
                                     "--unix-socket",
                                     a_dir_ + "/a.sock",
                                     "-X",
                                     method,
                                     "http://bulkhead" + path};
    if (!body.empty())
      argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body});
    auto r = run_command(argv);
    auto nl = r.out.rfind('\n');
    json out = json::parse(r.out.substr(0, nl), nullptr, false);
    return {{"status", std::atoi(r.out.substr(nl + 1).c_str())}, {"body", out}};
  }
  std::string record_a(const std::string &name) {
    return read_file(a_dir_ + "/root/containers/" + name + "/container.json");
  }
};

TEST_F(DaemonReplicaTest, BadProtectRequestsAreClearErrorsAndChangeNothing) {
  pair_and_make("c1", false);
  import_busybox();
  ASSERT_TRUE(ctl({"create", "taken", "--template", "busybox"}).ok());
  auto made = ctl_a({"create", "taken", "--template", "busybox"});
  ASSERT_TRUE(made.ok()) << made;
  std::string before = record_a("c1");
  ASSERT_FALSE(before.empty());
  struct Case {
    std::string path, body;
    int status;
    std::string message;
  };
  std::vector<Case> cases = {
      {"/1.0/containers/nope/protect", R"({"standby":"host-b"})", 404, "nope"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-a"})", 400,
       "standby \"host-a\" is this host (bulkheadd --host-name host-a)"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-z"})", 404,
       "standby \"host-z\" is not a paired remote"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-b","interval_ms":500})", 400,
       "\"interval_ms\" 500 is out of range"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-b","interval_ms":"2s"})", 400,
       "\"interval_ms\" must be a number of milliseconds"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-b","mode":"ram"})", 400,
       "\"mode\" must be \"memory\" or \"disk\" (got \"ram\")"},
      {"/1.0/containers/c1/protect", R"({"standby":"host-b","colour":"red"})", 400, "colour"},
      {"/1.0/containers/c1/protect", R"({})", 400, "standby"},
      {"/1.0/containers/taken/protect", R"({"standby":"host-b"})", 409,
       "standby host-b (198.18.90.1:8443) refuses to hold a replica of taken: container \"taken\" exists on "
       "host-b"},
      {"/1.0/containers/c1/protect", "DELETE", 400, "container c1 is not protected"},
  };
  for (const auto &c : cases) {
    auto r = c.body == "DELETE" ? http_a("DELETE", c.path) : http_a("POST", c.path, c.body);
    EXPECT_EQ(r["status"], c.status) << c.path << " " << c.body << ": " << r.dump();
    EXPECT_TRUE(contains(r["body"].value("error", std::string()), c.message))
        << c.path << " " << c.body << ": " << r.dump();
  }
  // The command line says the same.
  auto bad_interval = ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "soon"});
  EXPECT_FALSE(bad_interval.ok());
  EXPECT_TRUE(contains(bad_interval.err, "--interval \"soon\": expected a duration")) << bad_interval;

  // An unreachable standby: refused, named, nothing changes.
  kill_daemon();
  auto t0 = std::chrono::steady_clock::now();
  auto down = ctl_a({"protect", "c1", "--standby", "host-b", "--mode", "disk"});
  EXPECT_FALSE(down.ok());
  EXPECT_TRUE(contains(down.err, "standby host-b (198.18.90.1:8443) is unreachable")) << down;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);

  EXPECT_EQ(record_a("c1"), before);
  EXPECT_FALSE(info_a("c1").contains("replication"));
  start_b();
  EXPECT_EQ(replicas_b(), json::array());
  EXPECT_FALSE(std::filesystem::exists(root_ + "/replicas/c1"));
}

TEST_F(DaemonReplicaTest, DiskModeReplicatesAFileChangeAndActivateRunsItOnTheStandby) {
  pair_and_make("c1", true);
  auto p = ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "1s", "--mode", "disk"});
  ASSERT_TRUE(p.ok()) << p;
  EXPECT_TRUE(contains(p.out, "c1 is protected: disk replication to host-b every 1000 ms")) << p;
  // "ok" between rounds; a 1 s interval under ASan may already be in the next round ("syncing").
  auto r =
      wait_replication("c1", [](const json &r) { return r.value("syncs", 0) >= 1 && r["state"] == "ok"; });
  EXPECT_EQ(r["standby"], "host-b");
  EXPECT_EQ(r["mode"], "disk");
  EXPECT_EQ(r["interval_ms"], 1000);
  EXPECT_EQ(r["state"], "ok") << r.dump();
  EXPECT_TRUE(r["last_sync_age_ms"].is_number()) << r.dump();
  EXPECT_GT(r.value("last_bytes", 0), 1000) << r.dump(); // the first set carries the template
  EXPECT_GE(r.value("last_pause_ms", -1), 0) << r.dump();
  // Where the round went, phase by phase; the freeze is the pause reported above.
  ASSERT_TRUE(r["last_round_ms"].is_object()) << r.dump();
  for (const char *phase : {"check", "before_freeze", "pause", "export", "stream", "commit"})
    EXPECT_GE(r["last_round_ms"].value(phase, -1), 0) << phase << ": " << r.dump();
  EXPECT_EQ(r["last_round_ms"]["pause"], r["last_pause_ms"]) << r.dump();
  // The suite is the one this CPU runs faster (migration/tls_suites.hpp); the checksum XXH3-128.
  std::string channel = r.value("channel", "");
  EXPECT_TRUE(channel == "TLS_CHACHA20_POLY1305_SHA256 xxh3-128" ||
              channel == "TLS_AES_256_GCM_SHA384 xxh3-128")
      << r.dump();
  EXPECT_EQ(r.value("lag_bytes", -1), 0) << r.dump();
  auto human = ctl_a({"info", "c1"});
  EXPECT_TRUE(contains(human.out, "replication: disk to host-b every 1000 ms: ok, last set") ||
              contains(human.out, "replication: disk to host-b every 1000 ms: syncing, last set"))
      << human;
  // The template came with the first set and is B's now.
  auto templates = ctl({"template", "list", "--json"});
  EXPECT_TRUE(contains(templates.out, "\"busybox\"")) << templates;

  // A change reaches the standby within a round or two.
  write_a_file("c1", "v2");
  int syncs = wait_replication("c1", [](const json &r) { return r.value("syncs", 0) >= 1; })["syncs"];
  auto later = wait_replication("c1", [&](const json &r) { return r.value("syncs", 0) >= syncs + 2; });
  // From the commit before: about the interval (1 s) when a round fits in it, as here.
  EXPECT_GT(later["last_round_ms"].value("period", 0), 500) << later.dump();
  // The loss had A died just before that commit: from the set before's freeze, so more than a
  // period's worth of the interval.
  EXPECT_GT(later["last_round_ms"].value("exposure", 0), 500) << later.dump();
  // The checkpoint itself (freeze to commit) bounds the phases after the freeze (each a difference
  // of whole ms: 2 ms of rounding); the exposure is the interval plus it plus how late this freeze
  // came against the one before.
  const json &last = later["last_round_ms"];
  EXPECT_GE(last.value("checkpoint", -100) + 2, last.value("pause", 0) + last.value("export", 0) +
                                                    last.value("stream", 0) + last.value("commit", 0))
      << later.dump();
  EXPECT_GE(last.value("late", -1), 0) << later.dump();
  // Every committed round, in order, the last one as last_round_ms says.
  const json &recent = later["recent_rounds"];
  ASSERT_TRUE(recent.is_array() && !recent.empty()) << later.dump();
  EXPECT_LE(recent.size(), 16u);
  for (size_t k = 1; k < recent.size(); ++k)
    EXPECT_EQ(recent[k].value("sync", 0), recent[k - 1].value("sync", 0) + 1) << later.dump();
  EXPECT_EQ(recent.back().value("sync", 0), later.value("syncs", -1)) << later.dump();
  EXPECT_EQ(recent.back().value("checkpoint", -2), last.value("checkpoint", -1)) << later.dump();
  EXPECT_GT(recent.back().value("bytes", 0), 0) << later.dump();
  auto list = replicas_b();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["name"], "c1");
  EXPECT_EQ(list[0]["source_host"], "host-a");
  EXPECT_EQ(list[0]["mode"], "disk");
  EXPECT_EQ(list[0]["state"], "running");
  EXPECT_GT(list[0].value("bytes", 0), 0);
  auto table = ctl({"replica", "list"});
  EXPECT_TRUE(contains(table.out, "c1    host-a  disk (disk set)  running")) << table;

  // A failover by hand: B runs it, with the file as A last sent it, the same limits.
  auto act = activate_on_b("c1");
  ASSERT_TRUE(act.ok()) << act;
  EXPECT_TRUE(contains(act.out, "c1 runs here: booted from its disk; replica of host-a")) << act;
  auto on_b = info("c1");
  EXPECT_EQ(on_b["state"], "running") << on_b.dump();
  EXPECT_EQ(on_b["limits"], info_a("c1")["limits"]);
  EXPECT_EQ(on_b["privileged"], false) << on_b.dump(); // still unprivileged, in a range of B's
  EXPECT_EQ(on_b["idmap"]["size"], 65536) << on_b.dump();
  EXPECT_EQ(read_file(root_ + "/containers/c1/disk/upper/state.txt"), "v2");
  EXPECT_FALSE(std::filesystem::exists(root_ + "/replicas/c1"));
  EXPECT_EQ(replicas_b(), json::array());
  // The source's next rounds are refused (the name runs on B now) and say so; it never stops or
  // freezes its own copy for that. (A set that arrived during the activation was refused as busy:
  // the round after says why.)
  auto refused = wait_replication("c1", [](const json &r) {
    return r.value("state", "") == "refused" &&
           contains(r.value("error", std::string()), "container \"c1\" exists on host-b");
  });
  EXPECT_EQ(refused.value("state", ""), "refused") << refused.dump();
  EXPECT_EQ(info_a("c1")["state"], "running");
  // Activating again, or what B never held: clear errors.
  auto again = ctl({"replica", "activate", "c1"});
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.err, "container c1 exists on host-b already")) << again;
  auto none = ctl({"replica", "activate", "c9"});
  EXPECT_FALSE(none.ok());
  EXPECT_TRUE(contains(none.err, "host-b holds no replica of it")) << none;
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
}

TEST_F(DaemonReplicaTest, AKilledStandbyIsReportedAndTheContainerRunsOn) {
  pair_and_make("c1", true);
  ASSERT_TRUE(ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "1s", "--mode", "disk"}).ok());
  wait_replication("c1", [](const json &r) { return r.value("state", "") == "ok"; });
  int64_t pid = info_a("c1")["pid"];
  kill_daemon();
  auto down = wait_replication(
      "c1", [](const json &r) { return r.value("state", "") == "standby unreachable"; }, 30s);
  EXPECT_TRUE(contains(down.value("error", std::string()), "standby host-b (198.18.90.1:8443)"))
      << down.dump();
  auto human = ctl_a({"info", "c1"});
  EXPECT_TRUE(contains(human.out, "standby unreachable")) << human;
  auto c1 = info_a("c1");
  EXPECT_EQ(c1["state"], "running");
  EXPECT_EQ(c1["pid"], pid); // never stopped or restarted: it ran on

  // It keeps retrying: B back, sets flow again, the replica is there.
  start_b();
  auto back = wait_replication(
      "c1", [](const json &r) { return r.value("state", "") == "ok"; }, 30s);
  EXPECT_EQ(replicas_b().size(), 1u);
  // Unprotect: the replication stops and B drops its replica.
  auto un = ctl_a({"unprotect", "c1"});
  ASSERT_TRUE(un.ok()) << un;
  EXPECT_TRUE(contains(un.out, "c1 is unprotected; host-b dropped its replica")) << un;
  EXPECT_FALSE(info_a("c1").contains("replication"));
  EXPECT_EQ(replicas_b(), json::array());
  // Protected again, then unprotected while B is down: said so, the protection still ends.
  ASSERT_TRUE(ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "1s", "--mode", "disk"}).ok());
  wait_replication("c1", [](const json &r) { return r.value("syncs", 0) >= 1; });
  kill_daemon();
  auto un2 = ctl_a({"unprotect", "c1"});
  ASSERT_TRUE(un2.ok()) << un2;
  EXPECT_TRUE(contains(un2.out, "is unreachable")) << un2;
  EXPECT_FALSE(info_a("c1").contains("replication"));
  EXPECT_FALSE(contains(record_a("c1"), "protection"));
  start_b();
}

// The established TCP connections to B's peer port, as B's network namespace lists them
// (/proc/PID/net/tcp: the local address in hex, host byte order; state 01 = established): the
// remote ends, "ADDR:PORT" in hex.
std::set<std::string> connections_to(pid_t pid) {
  std::set<std::string> out;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/net/tcp"));
  std::string line;
  std::getline(in, line); // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    f >> slot >> local >> remote >> state;
    if (local == "015A12C6:20FB" && state == "01") // 198.18.90.1:8443 (kAddressB)
      out.insert(remote);
  }
  return out;
}

TEST_F(DaemonReplicaTest, RoundsShareOneConnectionAndReplaceItWhenTheStandbyClosedIt) {
  ASSERT_STREQ(kAddressB, "198.18.90.1:8443") << "connections_to() reads this address in hex";
  pair_and_make("c1", true);
  // 6 s: B's restart below fits between two rounds with room, even under the sanitizers.
  ASSERT_TRUE(ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "6s", "--mode", "disk"}).ok());
  int syncs = wait_replication("c1", [](const json &r) { return r.value("syncs", 0) >= 1; })["syncs"];
  // Between rounds the last one's connection stays open, and the next round goes over it.
  auto kept = connections_to(daemon_pid_);
  ASSERT_EQ(kept.size(), 1u) << "A keeps one connection to B between rounds";
  syncs = wait_replication("c1", [&](const json &r) { return r.value("syncs", 0) >= syncs + 1; })["syncs"];
  auto now = connections_to(daemon_pid_);
  EXPECT_EQ(now, kept) << "the round opened a connection of its own";
  // B restarts between two rounds: its end of the kept connection is gone. The next round
  // notices, connects again within the round, and commits: no round fails.
  kill_daemon();
  start_b();
  wait_replication("c1", [&](const json &r) { return r.value("syncs", 0) >= syncs + 1; });
  std::string log = read_file(a_dir_ + "/bulkheadd.log");
  EXPECT_FALSE(contains(log, "replicating c1 to host-b:")) << log;
  auto reopened = connections_to(daemon_pid_);
  EXPECT_EQ(reopened.size(), 1u);
  EXPECT_NE(reopened, kept);
}

// Rounds on a kept connection skip replica.check (the last commit told the source what the
// standby holds). A template removed on the standby meanwhile makes that round's commit refuse;
// the next round checks again and carries the template.
TEST_F(DaemonReplicaTest, ATemplateRemovedOnTheStandbyIsSentAgain) {
  pair_and_make("c1", true);
  ASSERT_TRUE(ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "1s", "--mode", "disk"}).ok());
  int syncs = wait_replication("c1", [](const json &r) { return r.value("syncs", 0) >= 2; })["syncs"];
  auto rm = ctl({"template", "rm", "busybox"});
  ASSERT_TRUE(rm.ok()) << rm; // a replica is not a container: nothing on B uses it
  wait_replication("c1", [&](const json &r) { return r.value("syncs", 0) >= syncs + 2; });
  std::string log = read_file(a_dir_ + "/bulkheadd.log");
  EXPECT_TRUE(
      contains(log, "needs template \"busybox\", which is no longer on host-b; the next set carries it"))
      << log;
  auto templates = ctl({"template", "list", "--json"});
  EXPECT_TRUE(contains(templates.out, "\"busybox\"")) << templates;
  auto act = activate_on_b("c1");
  ASSERT_TRUE(act.ok()) << act;
  EXPECT_EQ(info("c1")["state"], "running");
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
}

TEST_F(DaemonReplicaTest, ACutSetLeavesThePreviousCompleteSet) {
  // A large file, so a set takes long enough on the wire to be cut in the middle.
  protect_with_large_file("c1", 96);
  if (HasFatalFailure())
    return;
  auto first = replicas_b();
  ASSERT_EQ(first.size(), 1u) << first.dump();
  std::string sha = first[0]["checksum"];
  EXPECT_EQ(sha.rfind("xxh3-128:", 0), 0u) << "both hosts know XXH3-128: " << sha;
  // A stopped, unchanged container is not sent again; a change makes the next set.
  write_a_file("c1", "v2");
  // Cut the stream: B dies while the next set arrives (its staging directory exists).
  bool cut = false;
  std::vector<std::string> cut_sets; // the staging directories B had when it died
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end && !cut;) {
    cut = !arriving_sets("c1").empty();
    if (cut) {
      kill_daemon();
      cut_sets = arriving_sets("c1");
    } else
      std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(cut) << "no set arrived after the change";
  // What B had: the previous complete set, current; the cut one only as a staging directory.
  auto current = std::filesystem::read_symlink(root_ + "/replicas/c1/current");
  auto meta = json::parse(read_file(root_ + "/replicas/c1/" + current.string() + "/meta.json"));
  EXPECT_EQ(meta["checksum"], sha);
  start_b();
  auto after = replicas_b();
  ASSERT_EQ(after.size(), 1u) << after.dump();
  EXPECT_EQ(after[0]["checksum"], sha) << "the cut set replaced the complete one";
  // The cut set's staging directory is swept at B's start (A's retry may already have begun a new
  // one, under another name).
  ASSERT_FALSE(cut_sets.empty());
  for (const auto &dir : cut_sets)
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir << " survived B's restart";
  // The source retries: the changed set arrives complete and replaces the old one.
  for (auto end = std::chrono::steady_clock::now() + 120s; std::chrono::steady_clock::now() < end;) {
    auto l = replicas_b();
    if (l.size() == 1 && l[0]["checksum"] != sha)
      break;
    std::this_thread::sleep_for(200ms);
  }
  auto last = replicas_b();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_NE(last[0]["checksum"], sha);
  auto act = activate_on_b("c1", true);
  ASSERT_TRUE(act.ok()) << act;
  auto report = json::parse(act.out, nullptr, false);
  EXPECT_EQ(report.value("how", ""), "stopped") << act;
  // Only imported: no boot or restore phase is reported for what did not run.
  EXPECT_EQ(report.value("phases_ms", json()).size(), 1u) << act;
  EXPECT_TRUE(report.value("phases_ms", json()).contains("import")) << act;
  EXPECT_EQ(info("c1")["state"], "stopped");
  EXPECT_EQ(read_file(root_ + "/containers/c1/disk/upper/state.txt"), "v2");
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
}

// An activation while a set arrives does not wait for it (a source that died mid-stream would
// hold it until TCP keepalive gives up): the arriving set is cut, the complete one runs.
TEST_F(DaemonReplicaTest, ActivateCutsTheSetArrivingAndRunsTheCompleteOne) {
  // Large, so a set is still on the wire when the activation comes.
  protect_with_large_file("c1", 256);
  if (HasFatalFailure())
    return;
  write_a_file("c1", "v2");
  bool arriving = false;
  for (auto end = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < end && !arriving;) {
    arriving = !arriving_sets("c1").empty();
    if (!arriving)
      std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(arriving) << "no set arrived after the change";
  auto act = ctl({"replica", "activate", "c1"});
  ASSERT_TRUE(act.ok()) << act; // not "busy"
  EXPECT_TRUE(contains(read_file(dir_ + "/bulkheadd.log"), "activating c1: cutting the set arriving for it"));
  EXPECT_EQ(read_file(root_ + "/containers/c1/disk/upper/state.txt"), "v1"); // the complete set's
  std::error_code ec;
  for (const auto &f : std::filesystem::directory_iterator(root_ + "/replicas", ec))
    ADD_FAILURE() << f.path() << " left after the activation";
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
}

} // namespace

namespace {

// Memory mode where CRIU cannot dump (this host's kernel): each round fails after the freeze, and
// the container must come out of every one of them thawed and running.
TEST_F(DaemonReplicaTest, AFailedMemoryRoundLeavesTheContainerRunningAndIsRetried) {
  pair_and_make("c1", true);
  int64_t pid = info_a("c1")["pid"];
  auto p = ctl_a({"protect", "c1", "--standby", "host-b", "--interval", "1s"});
  ASSERT_TRUE(p.ok()) << p;
  auto failed = wait_replication("c1", [](const json &r) { return r.value("state", "") == "failed"; });
  EXPECT_EQ(failed["mode"], "memory");
  EXPECT_TRUE(contains(failed.value("error", std::string()), "checkpoint of c1 failed; it runs on"))
      << failed.dump();
  // Retried: a second failure comes a round later (the standby holds nothing from them).
  for (int i = 0; i < 3; ++i) {
    // Never left frozen: a command runs in it within seconds. A round freezes it briefly every
    // second (exec then answers "is paused"), so one refusal proves nothing; a container left
    // frozen by a failed round would refuse until the deadline.
    CommandResult ran;
    for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
      ran = ctl_a({"exec", "c1", "--", "true"});
      if (ran.ok() || !contains(ran.err, "is paused"))
        break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(ran.ok()) << ran;
    std::this_thread::sleep_for(700ms);
  }
  auto c1 = info_a("c1");
  EXPECT_EQ(c1["state"], "running");
  EXPECT_EQ(c1["pid"], pid);
  EXPECT_EQ(c1["replication"].value("syncs", -1), 0) << c1.dump();
  EXPECT_EQ(replicas_b(), json::array());
  std::string log = read_file(a_dir_ + "/bulkheadd.log");
  size_t rounds = 0;
  for (size_t at = log.find("replicating c1 to host-b: "); at != std::string::npos;
       at = log.find("replicating c1 to host-b: ", at + 1))
    ++rounds;
  EXPECT_GE(rounds, 2u) << log;
}

} // namespace
