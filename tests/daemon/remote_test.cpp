// Pairing two bulkheadd daemons (`trust add` / `remote add`, daemon/peer_server.cpp): host B is
// the fixture's daemon, listening on 198.18.90.1:8443; host A is a second bulkheadd with its own
// root and socket. Both run in a network namespace of the test's own.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "remote_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bh_test::CommandResult;
using bh_test::contains;
using bh_test::DaemonRemoteTest;
using bh_test::json;
using bh_test::kAddressB;
using bh_test::last_line;
using bh_test::read_file;
using bh_test::run_command;

TEST_F(DaemonRemoteTest, PairWithATokenAndStayPairedAcrossRestarts) {
  start_b();
  start_a();
  auto b_info = http("GET", "/1.0").body;
  EXPECT_EQ(b_info["listen"], kAddressB) << b_info.dump();
  EXPECT_EQ(b_info["host_name"], "host-b");

  std::string token = token_for("host-a");
  ASSERT_EQ(token.rfind("bh1:" + b_info["fingerprint"].get<std::string>() + ":", 0), 0u) << token;
  auto pending = json::parse(ctl({"trust", "list", "--json"}).out);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0]["state"], "pending");

  auto add = ctl_a({"remote", "add", "b", kAddressB, "--token", token});
  ASSERT_TRUE(add.ok()) << add << read_file(dir_ + "/bulkheadd.log");
  EXPECT_TRUE(contains(add.out, "host-b")) << add;

  auto trusted = json::parse(ctl({"trust", "list", "--json"}).out);
  ASSERT_EQ(trusted.size(), 1u) << trusted.dump();
  EXPECT_EQ(trusted[0]["state"], "trusted");
  EXPECT_EQ(trusted[0]["fingerprint"], fingerprint_of_a());

  auto remotes = json::parse(ctl_a({"remote", "list", "--json"}).out);
  ASSERT_EQ(remotes.size(), 1u);
  EXPECT_EQ(remotes[0]["status"], "online") << remotes.dump();
  EXPECT_EQ(remotes[0]["host"], "host-b");
  EXPECT_EQ(remotes[0]["fingerprint"], b_info["fingerprint"]);

  // Both sides keep the pairing (identity and trust) across a crash of either daemon.
  kill_daemon();
  start_b();
  stop_a();
  start_a();
  EXPECT_EQ(http("GET", "/1.0").body["fingerprint"], b_info["fingerprint"]);
  remotes = json::parse(ctl_a({"remote", "list", "--json"}).out);
  ASSERT_EQ(remotes.size(), 1u);
  EXPECT_EQ(remotes[0]["status"], "online") << remotes.dump();

  // Revoked on B: A's requests are refused, and A says why.
  ASSERT_TRUE(ctl({"trust", "rm", "host-a"}).ok());
  remotes = json::parse(ctl_a({"remote", "list", "--json"}).out);
  EXPECT_EQ(remotes[0]["status"], "unreachable");
  EXPECT_TRUE(contains(remotes[0].value("error", ""), "does not trust")) << remotes.dump();
  ASSERT_TRUE(ctl_a({"remote", "rm", "b"}).ok());
  EXPECT_EQ(json::parse(ctl_a({"remote", "list", "--json"}).out).size(), 0u);
  EXPECT_TRUE(json::parse(read_file(root_ + "/trust.json"))["trusted"].empty());
}

TEST_F(DaemonRemoteTest, BadTokensAndAddressesAreRefusedAndPairNothing) {
  start_b();
  start_a();
  std::string token = token_for("host-a");
  std::string secret = token.substr(token.rfind(':') + 1);
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"remote", "add", "b", kAddressB, "--token", "garbage"}, "not a bulkhead trust token"},
      // A token naming another certificate: the host at the address is not the one that made it.
      {{"remote", "add", "b", kAddressB, "--token", "bh1:sha256:" + std::string(64, '0') + ":" + secret},
       "presented certificate"},
      {{"remote", "add", "b", "198.18.90.1:8444", "--token", token}, "Connection refused"},
      {{"remote", "add", "b", "198.18.90.1", "--token", token}, "HOST:PORT"},
      {{"remote", "add", "b", "198.18.90.1:70000", "--token", token}, "1 to 65535"},
      {{"remote", "add", "B_b", kAddressB, "--token", token}, "a-z, 0-9"},
      {{"remote", "add", "b", kAddressB, "--token",
        token.substr(0, token.size() - 1) + (token.back() == '0' ? "1" : "0")},
       "unknown, used already or expired"},
  };
  for (const auto &c : cases) {
    auto r = ctl_a(c.args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.expect)) << r;
  }
  EXPECT_EQ(json::parse(ctl_a({"remote", "list", "--json"}).out).size(), 0u);
  auto list = json::parse(ctl({"trust", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["state"], "pending") << "a refused attempt must not consume or trust anything";

  // One use only: the second daemon that presents it is refused.
  ASSERT_TRUE(ctl_a({"remote", "add", "b", kAddressB, "--token", token}).ok());
  auto again = ctl_a({"remote", "add", "b2", kAddressB, "--token", token});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_TRUE(contains(again.err, "used already")) << again;
  EXPECT_EQ(json::parse(ctl_a({"remote", "list", "--json"}).out).size(), 1u);

  // An expired token is refused.
  std::string brief = token_for("host-c", {"--expiry", "1s"});
  std::this_thread::sleep_for(1500ms);
  auto late = ctl_a({"remote", "add", "c", kAddressB, "--token", brief});
  EXPECT_EQ(late.exit_code, 1) << late;
  EXPECT_TRUE(contains(late.err, "expired")) << late;

  // Tokens need a listener; names are checked; a pending name is not invited twice.
  auto no_listen = ctl_a({"trust", "add", "host-b"});
  EXPECT_EQ(no_listen.exit_code, 1);
  EXPECT_TRUE(contains(no_listen.err, "--listen")) << no_listen;
  EXPECT_TRUE(contains(ctl({"trust", "add", "Bad_Name"}).err, "a-z, 0-9"));
  EXPECT_TRUE(contains(ctl({"trust", "add", "host-a"}).err, "trusted already"));
  EXPECT_TRUE(contains(ctl({"trust", "add", "host-d", "--expiry", "soon"}).err, "duration"));
  EXPECT_TRUE(contains(ctl({"trust", "rm", "nobody"}).err, "no trusted host"));
}

// `host evacuate` between two daemons on this machine (A -> B), cold: c1 stopped, c2 running (live
// moves and networks: tests/multihost/vm-evacuate.sh in the VM). c3's name is taken on B: the dry
// run says so and changes nothing; the evacuation (--parallel 2) moves c1 and c2 with their files
// (c2 runs on B), leaves c3 on A and fails naming it. One cancelled at its start moves nothing. While it runs
// (B is SIGSTOPped, so A's evacuation waits in its TLS handshake with B), A reports "evacuating" and refuses
// creates and starts; afterwards it takes them again.
TEST_F(DaemonRemoteTest, EvacuateMovesWhatItCanAndNamesTheRest) {
  start_b();
  start_a();
  ASSERT_TRUE(ctl_a({"remote", "add", "b", kAddressB, "--token", token_for("host-a")}).ok());
  import_busybox();
  auto imported = ctl_a({"template", "import", "busybox", busybox_rootfs_});
  ASSERT_TRUE(imported.ok()) << imported;
  for (const char *c : {"c1", "c2", "c3"}) {
    auto made = ctl_a({"create", c, "--template", "busybox"});
    ASSERT_TRUE(made.ok()) << made;
    ASSERT_TRUE(bh_test::write_file(a_dir_ + "/root/containers/" + c + "/disk/upper/state.txt",
                                    std::string("file of ") + c));
  }
  ASSERT_TRUE(ctl({"create", "c3", "--template", "busybox"}).ok());
  auto started_c2 = ctl_a({"start", "c2"});
  ASSERT_TRUE(started_c2.ok()) << started_c2;
  auto http_a = [&](const std::string &method, const std::string &path, const std::string &body = "") {
    std::vector<std::string> argv = {"curl", "-sS",  "--unix-socket",         a_dir_ + "/a.sock",
                                     "-X",   method, "http://bulkhead" + path};
    if (!body.empty())
      argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body});
    auto r = run_command(argv);
    return json::parse(r.out, nullptr, false);
  };
  auto names = [](const CommandResult &r) {
    std::vector<std::string> out;
    for (const auto &c : json::parse(r.out))
      out.push_back(c["name"]);
    return out;
  };
  auto migrate_files = [](const std::string &root) {
    std::string found;
    for (const auto &d : std::filesystem::directory_iterator(root))
      if (d.path().filename().string().rfind("migrate-", 0) == 0)
        found += d.path().string() + " ";
    return found;
  };
  using Names = std::vector<std::string>;

  // Dry run: the remote's verdict on each, nothing changes.
  auto dry = ctl_a({"host", "evacuate", "b", "--dry-run", "--cold", "--json"});
  ASSERT_TRUE(dry.ok()) << dry;
  auto m = json::parse(dry.out);
  EXPECT_EQ(m["dry_run"], true);
  EXPECT_EQ(m["would_move"], 2) << m.dump();
  EXPECT_EQ(m["refused"], 1) << m.dump();
  ASSERT_EQ(m["containers"].size(), 3u) << m.dump();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(m["containers"][i]["result"], "would-move") << m.dump();
    EXPECT_EQ(m["containers"][i]["state"], i == 1 ? "running" : "stopped") << m.dump();
    EXPECT_EQ(m["containers"][i]["mode"], "cold") << m.dump();
    EXPECT_EQ(m["containers"][i]["template_sent"], false) << m.dump();
  }
  EXPECT_EQ(m["containers"][2]["name"], "c3");
  EXPECT_EQ(m["containers"][2]["result"], "refused");
  EXPECT_TRUE(
      contains(m["containers"][2]["error"].get<std::string>(), "container \"c3\" already exists on host-b"))
      << m.dump();
  auto table = ctl_a({"host", "evacuate", "b", "--dry-run"});
  EXPECT_TRUE(contains(table.out, "c2    running  live  would-move")) << table; // live by default
  ASSERT_TRUE(table.ok()) << table;
  EXPECT_TRUE(contains(table.out,
                       "dry run, nothing changed: 2 would move to b (198.18.90.1:8443), 1 would be "
                       "refused"))
      << table;
  EXPECT_EQ(names(ctl_a({"list", "--json"})), (Names{"c1", "c2", "c3"}));
  EXPECT_EQ(names(ctl({"list", "--json"})), (Names{"c3"}));
  EXPECT_EQ(migrate_files(a_dir_ + "/root") + migrate_files(root_), "");
  auto c2_before = json::parse(ctl_a({"info", "c2", "--json"}).out);
  EXPECT_EQ(c2_before["state"], "running");

  // Cancelled before it moved anything (held at its start while B does not answer): nothing moves.
  ASSERT_EQ(::kill(daemon_pid_, SIGSTOP), 0);
  auto cancelled = http_a("POST", "/1.0/host/evacuate", R"({"remote": "b"})");
  auto cancel = http_a("DELETE", "/1.0/operations/" + cancelled.value("id", std::string("?")));
  ASSERT_EQ(::kill(daemon_pid_, SIGCONT), 0);
  auto ended =
      http_a("GET", "/1.0/operations/" + cancelled.value("id", std::string("?")) + "/wait?timeout=60");
  EXPECT_EQ(ended["status"], "cancelled") << ended.dump() << cancel.dump();
  EXPECT_EQ(names(ctl_a({"list", "--json"})), (Names{"c1", "c2", "c3"}));
  EXPECT_EQ(names(ctl({"list", "--json"})), (Names{"c3"}));
  EXPECT_EQ(http_a("GET", "/1.0/host")["state"], "normal");

  // The evacuation, held at its start while B does not answer.
  ASSERT_EQ(::kill(daemon_pid_, SIGSTOP), 0);
  auto started = http_a("POST", "/1.0/host/evacuate", R"({"remote": "b", "parallel": 2, "mode": "cold"})");
  std::string id = started.value("id", "");
  auto host = http_a("GET", "/1.0/host");
  auto create = ctl_a({"create", "c4", "--template", "busybox"});
  auto start = ctl_a({"start", "c1"});
  auto list = ctl_a({"list"});
  auto again = http_a("POST", "/1.0/host/evacuate", R"({"remote": "b"})");
  ASSERT_EQ(::kill(daemon_pid_, SIGCONT), 0);
  ASSERT_FALSE(id.empty()) << started.dump();
  EXPECT_EQ(host["state"], "evacuating") << host.dump();
  EXPECT_EQ(host["evacuation"]["remote"], "b") << host.dump();
  EXPECT_EQ(host["evacuation"]["operation"], id) << host.dump();
  EXPECT_EQ(host["evacuation"]["parallel"], 2) << host.dump();
  EXPECT_FALSE(create.ok());
  EXPECT_TRUE(contains(create.err, "creating c4: refused, host is being evacuated (host-a to remote b"))
      << create;
  EXPECT_FALSE(start.ok());
  EXPECT_TRUE(contains(start.err, "host is being evacuated")) << start;
  EXPECT_TRUE(contains(list.out, "host host-a is being evacuated to b (operation " + id)) << list;
  EXPECT_TRUE(contains(again.dump(), "being evacuated already")) << again.dump();

  auto done = http_a("GET", "/1.0/operations/" + id + "/wait?timeout=120");
  EXPECT_EQ(done["status"], "failure") << done.dump();
  EXPECT_TRUE(contains(done.value("error", std::string()),
                       "evacuating host-a to remote b (198.18.90.1:8443): 1 of 3 containers did "
                       "not move and stay here: c3 (container \"c3\" already exists on host-b"))
      << done.dump();
  m = done["metadata"];
  ASSERT_EQ(m["containers"].size(), 3u) << m.dump();
  EXPECT_EQ(m["moved"], 2) << m.dump();
  EXPECT_EQ(m["failed"], 1) << m.dump();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(m["containers"][i]["result"], "moved") << m.dump();
    EXPECT_GT(m["containers"][i]["bytes"].get<uint64_t>(), 0u) << m.dump();
  }
  EXPECT_EQ(m["containers"][0]["downtime_ms"], 0) << m.dump(); // stopped: no downtime
  EXPECT_GT(m["containers"][1]["downtime_ms"].get<int64_t>(), 0) << m.dump();
  EXPECT_EQ(m["containers"][1]["state"], "running") << m.dump();
  EXPECT_EQ(m["containers"][2]["result"], "failed") << m.dump();
  EXPECT_EQ(names(ctl_a({"list", "--json"})), (Names{"c3"}));
  EXPECT_EQ(names(ctl({"list", "--json"})), (Names{"c1", "c2", "c3"}));
  for (const char *c : {"c1", "c2"})
    EXPECT_EQ(read_file(root_ + "/containers/" + c + "/disk/upper/state.txt"), std::string("file of ") + c);
  EXPECT_EQ(info("c1")["state"], "stopped");
  auto c2 = wait_info("c2", [](const json &j) { return j["state"] == "running"; });
  EXPECT_NE(c2["pid"], c2_before["pid"]) << "cold: c2 was started again on B";
  EXPECT_EQ(read_file(a_dir_ + "/root/containers/c3/disk/upper/state.txt"), "file of c3");
  EXPECT_EQ(migrate_files(a_dir_ + "/root") + migrate_files(root_), "");

  // Over: A takes creates and starts again.
  host = http_a("GET", "/1.0/host");
  EXPECT_EQ(host["state"], "normal") << host.dump();
  auto made = ctl_a({"create", "c4", "--template", "busybox"});
  EXPECT_TRUE(made.ok()) << made;
  EXPECT_FALSE(contains(ctl_a({"list"}).out, "evacuated"));
}

} // namespace
