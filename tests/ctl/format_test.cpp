#include <cstdio>
#include <gtest/gtest.h>

#include "cli/ctl_exec.hpp"
#include "cli/ctl_format.hpp"
#include "fake_daemon.hpp"

using namespace bulkhead::ctl;
using nlohmann::json;

TEST(CtlFormat, HumanSize) {
  EXPECT_EQ(human_size(0), "0B");
  EXPECT_EQ(human_size(1023), "1023B");
  EXPECT_EQ(human_size(1024), "1KiB");
  EXPECT_EQ(human_size(1536), "1.5KiB");
  EXPECT_EQ(human_size(12897484), "12.3MiB");
  EXPECT_EQ(human_size(268435456), "256MiB");
  EXPECT_EQ(human_size(1048575), "1MiB"); // 1023.999KiB rounds up a unit, not to "1024KiB"
  EXPECT_EQ(human_size(uint64_t{5} << 40), "5TiB");
}

TEST(CtlFormat, MemoryAndCpuColumns) {
  json c = {{"state", "running"},
            {"usage", {{"memory_bytes", 1048576}, {"cpu_seconds", 0.034}}},
            {"limits", {{"memory", nullptr}}}};
  EXPECT_EQ(memory_column(c), "1MiB/-");
  EXPECT_EQ(cpu_column(c), "0.03s");
  c["limits"]["memory"] = 536870912;
  EXPECT_EQ(memory_column(c), "1MiB/512MiB");
  c["state"] = "stopped";
  EXPECT_EQ(memory_column(c), "-");
  EXPECT_EQ(memory_column(json::object()), "-");
  EXPECT_EQ(cpu_column(json::object()), "-");
}

TEST(CtlFormat, TableAlignsColumns) {
  EXPECT_EQ(render_table({"A", "LONGER"}, {{"xxxx", "y"}, {"z", ""}}), "A     LONGER\nxxxx  y\nz\n");
}

TEST(CtlFormat, ProgressLine) {
  json op = {
      {"progress", {{"stage", "extracting"}, {"done", 12687769}, {"total", 24536678}, {"percent", 52}}}};
  EXPECT_EQ(progress_line("importing", "busybox", op),
            "importing busybox: extracting [#####     ] 52% 12.1/23.4 MiB");
  op["progress"] = {{"stage", "unpacking"}};
  EXPECT_EQ(progress_line("importing", "busybox", op), "importing busybox: unpacking");
  op["progress"] = {{"stage", "copying"}, {"done", 10}, {"total", 40}, {"percent", nullptr}};
  EXPECT_EQ(progress_line("creating", "deb", op), "creating deb: copying [##        ] 25% 10/40 B");
}

TEST(CtlFormat, EventLine) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  json e = {{"action", "template-imported"},
            {"name", "busybox"},
            {"time", 1764820000000},
            {"detail", json::object()}};
  EXPECT_EQ(event_line(e), "2025-12-04 03:46:40.000 template-imported busybox");
}

TEST(CtlFormat, ContainerViewOfAStoppedOne) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  json c = {{"name", "db"},
            {"state", "stopped"},
            {"pid", 0},
            {"template", "deb"},
            {"limits", {{"memory", nullptr}, {"cpus", nullptr}, {"pids", nullptr}}},
            {"usage", nullptr},
            {"restarts", 2},
            {"restart_policy", "no"},
            {"onboot", true},
            {"hostname", "db"},
            {"env", {"A=b"}},
            {"init", {"/sbin/init", "--log-level=warn"}},
            {"created_at", 1764820000},
            {"last_exit", {{"code", 1}, {"signal", 0}, {"at", 1764820100}}}};
  EXPECT_EQ(container_view(c), "name:      db\n"
                               "state:     stopped\n"
                               "pid:       -\n"
                               "template:  deb\n"
                               "hostname:  db\n"
                               "memory:    -\n"
                               "cpus:      unlimited, used -\n"
                               "pids:      -/-\n"
                               "restart:   no (restarts: 2)\n"
                               "onboot:    yes\n"
                               "uptime:    -\n"
                               "init:      /sbin/init --log-level=warn\n"
                               "env:       A=b\n"
                               "created:   2025-12-04 03:46:40\n"
                               "last exit: code 1 at 2025-12-04 03:48:20\n");
}

TEST(CtlFormat, ConsoleDetachKeys) {
  DetachFilter f;
  bool detach = false;
  EXPECT_EQ(f.feed("ab\x1d", 3, detach), "ab");
  EXPECT_FALSE(detach);
  EXPECT_EQ(f.feed("x", 1, detach), "\x1dx");
  EXPECT_EQ(f.feed("\x1d\x1d", 2, detach), "\x1d");
  EXPECT_EQ(f.feed("\x1dq rest", 7, detach), "");
  EXPECT_TRUE(detach);
}

// The generated completion is valid bash and completes commands, subcommands and flags.
TEST(CtlFormat, BashCompletionCompletes) {
  std::string dir = bulkhead::ctl::test::temp_dir();
  std::string script = dir + "/bulkheadctl.bash";
  std::string cmd = std::string(BULKHEADCTL_BINARY) + " --generate-completion > " + script;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto complete = [&](const std::string &line) {
    std::string probe = "bash -c 'source " + script + "; COMP_WORDS=(" + line +
                        "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _bulkheadctl; echo \"${COMPREPLY[*]}\"' > " +
                        dir + "/out 2>&1";
    EXPECT_EQ(std::system(probe.c_str()), 0) << line;
    FILE *f = std::fopen((dir + "/out").c_str(), "r");
    char buf[4096] = {};
    size_t n = f ? std::fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
      std::fclose(f);
    return std::string(buf, n);
  };
  EXPECT_EQ(complete("bulkheadctl te"), "template\n");
  EXPECT_EQ(complete("bulkheadctl template i"), "import\n");
  EXPECT_EQ(complete("bulkheadctl create web --mem"), "--memory\n");
  EXPECT_EQ(complete("bulkheadctl --socket /x st"), "start stop\n");
  EXPECT_EQ(complete("bulkheadctl list --so"), "--socket\n");
  std::system(("rm -rf " + dir).c_str());
}

// `host evacuate`: one row per container, the counts after; a dry run has its own columns.
TEST(CtlFormat, EvacuationTable) {
  json m = {{"host", "host1"},
            {"remote", "host2"},
            {"address", "198.18.100.2:8443"},
            {"dry_run", false},
            {"moved", 2},
            {"failed", 1},
            {"skipped", 0},
            {"containers",
             {{{"name", "ct1"},
               {"state", "running"},
               {"mode", "live"},
               {"result", "moved"},
               {"error", ""},
               {"downtime_ms", 812},
               {"bytes", 1536}},
              {{"name", "ct3"},
               {"state", "stopped"},
               {"mode", "cold"},
               {"result", "moved"},
               {"error", ""},
               {"downtime_ms", 0},
               {"bytes", 268435456}},
              {{"name", "ct4"},
               {"state", "running"},
               {"mode", "live"},
               {"result", "failed"},
               {"error", "network only1 missing"},
               {"downtime_ms", 0},
               {"bytes", 0}}}}};
  EXPECT_EQ(evacuation_table(m),
            "NAME  STATE    MODE  RESULT  DOWNTIME  SENT    ERROR\n"
            "ct1   running  live  moved   812 ms    1.5KiB  -\n"
            "ct3   stopped  cold  moved   0 ms      256MiB  -\n"
            "ct4   running  live  failed  -         -       network only1 missing\n"
            "evacuated host1 to host2 (198.18.100.2:8443): 2 moved, 1 failed, 0 skipped\n");
  json d = {{"host", "host1"},
            {"remote", "host2"},
            {"address", "198.18.100.2:8443"},
            {"dry_run", true},
            {"would_move", 1},
            {"refused", 1},
            {"containers",
             {{{"name", "ct1"},
               {"state", "running"},
               {"mode", "live"},
               {"result", "would-move"},
               {"error", ""},
               {"template_sent", true}},
              {{"name", "ct4"},
               {"state", "stopped"},
               {"mode", "cold"},
               {"result", "refused"},
               {"error", "container \"ct4\" already exists on host2"},
               {"template_sent", false}}}}};
  EXPECT_EQ(evacuation_table(d),
            "NAME  STATE    MODE  WOULD       TEMPLATE-SENT  WHY NOT\n"
            "ct1   running  live  would-move  yes            -\n"
            "ct4   stopped  cold  refused     no             container \"ct4\" already exists on host2\n"
            "dry run, nothing changed: 1 would move to host2 (198.18.100.2:8443), 1 would be refused\n");
}

TEST(CtlFormat, HostViewAndNote) {
  json normal = {{"host_name", "host1"}, {"state", "normal"}, {"containers", 3}, {"evacuation", nullptr}};
  EXPECT_EQ(host_view(normal), "host: host1\nstate: normal\ncontainers: 3\n");
  json on_systemd = normal;
  on_systemd["cgroups"] = {{"driver", "systemd"}, {"parent", "machine.slice:bulkhead"}};
  EXPECT_EQ(host_view(on_systemd),
            "host: host1\nstate: normal\ncontainers: 3\ncgroups: systemd (machine.slice:bulkhead)\n");
  EXPECT_EQ(host_note(normal), "");
  json busy = normal;
  busy["state"] = "evacuating";
  busy["evacuation"] = {{"operation", "op-1"}, {"remote", "host2"}, {"parallel", 2}, {"mode", nullptr},
                        {"started_at", 0},     {"done", 1},         {"total", 4},    {"stage", "moving ct2"}};
  EXPECT_EQ(host_note(busy),
            "host host1 is being evacuated to host2 (operation op-1, 1 of 4 done): it creates "
            "and starts no container until that ends\n");
  EXPECT_EQ(host_view(busy), "host: host1\nstate: evacuating\ncontainers: 3\nevacuating to: host2\n"
                             "operation: op-1\nparallel: 2\nmode: live when running, else cold\n"
                             "progress: 1 of 4 done (moving ct2)\nstarted: -\n");
}

// `cluster list`: one row per host, its containers as NAME=STATE; "-" for a host without any.
TEST(CtlFormat, ClusterTable) {
  json c = json::parse(R"({"enabled": true, "host": "h1", "hosts": [
    {"name": "h1", "address": "198.18.0.1:8443", "state": "online",
     "containers": [{"name": "web", "state": "running"}, {"name": "db", "state": "stopped"}]},
    {"name": "host-2", "address": "198.18.0.2:8443", "state": "evacuating", "containers": []}]})");
  EXPECT_EQ(cluster_table(c), "HOST    ADDRESS          STATE       CONTAINERS\n"
                              "h1      198.18.0.1:8443  online      web=running,db=stopped\n"
                              "host-2  198.18.0.2:8443  evacuating  -\n");
  EXPECT_EQ(cluster_table(json::parse(R"({"enabled": true, "hosts": []})")), "");
}

// With failover (issue 14): offline members, the leader and the placements, each with what became of
// it (a move, a failed activation, a loss).
TEST(CtlFormat, ClusterTableWithLeaderAndPlacements) {
  json c = json::parse(R"({"enabled": true, "host": "b", "leader": "b", "hosts": [
    {"name": "a", "address": "198.18.0.1:8443", "state": "offline", "containers": []},
    {"name": "b", "address": "198.18.0.2:8443", "state": "online", "containers": []}],
    "placements": [
    {"name": "web", "host": "b", "standby": "", "epoch": 2, "failed_over_from": "a",
     "error": "no replica", "attempts": 3},
    {"name": "db", "host": "a", "standby": "", "epoch": 1, "lost": true, "lost_reason": "host a died"},
    {"name": "kv", "host": "b", "standby": "c", "epoch": 1}]})");
  EXPECT_EQ(
      cluster_table(c),
      "HOST  ADDRESS          STATE    CONTAINERS\n"
      "a     198.18.0.1:8443  offline  -\n"
      "b     198.18.0.2:8443  online   -\n"
      "leader: b\n"
      "\n"
      "CONTAINER  HOST  STANDBY  EPOCH  STATUS\n"
      "web        b     -        2      failed over from a; activation failed (3 attempts): no replica\n"
      "db         a     -        1      lost: host a died\n"
      "kv         b     c        1      ok\n");
  c["leader"] = nullptr;
  c["placements"] = json::array();
  EXPECT_NE(cluster_table(c).find("leader: none\n"), std::string::npos) << cluster_table(c);
}

// The cluster's trust (docs/remotes.md "One trust for the whole cluster"): the key's id and the hosts
// trusted through it, or that this host holds none; nothing from a daemon that does not say.
TEST(CtlFormat, ClusterTableTrustLine) {
  json c = json::parse(R"({"enabled": true, "leader": "a", "hosts": [
    {"name": "a", "address": "198.18.0.1:8443", "state": "online", "containers": []}],
    "trust": {"key_id": "bhk1:00ff", "members": ["a", "b"]}})");
  EXPECT_EQ(cluster_table(c), "HOST  ADDRESS          STATE   CONTAINERS\n"
                              "a     198.18.0.1:8443  online  -\n"
                              "leader: a\n"
                              "trust: cluster key bhk1:00ff, trusted through it: a, b\n");
  c["trust"] = json::parse(R"({"key_id": null, "members": []})");
  EXPECT_NE(cluster_table(c).find("trust: this host holds no cluster key (cluster join)\n"),
            std::string::npos)
      << cluster_table(c);
  c.erase("trust");
  EXPECT_EQ(cluster_table(c).find("trust:"), std::string::npos) << cluster_table(c);
}
