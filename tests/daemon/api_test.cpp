// The API beyond the lifecycle commands, against the real daemon: the lifecycle event stream,
// Prometheus metrics, and a long operation (a template import) cancelled half way.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "daemon_fixture.hpp"

namespace bh_test {

using DaemonApiTest = DaemonTest;

TEST_F(DaemonApiTest, EventsStreamTheLifecycle) {
  start_daemon();
  import_busybox();
  CommandOptions opts;
  opts.timeout = 15s; // the stream never ends by itself: wait() kills it and keeps what it printed
  // The stream goes to a file (bulkheadctl flushes each line) so the test can see the last event
  // arrive before it ends the stream: `destroy` answers before the event reaches a subscriber.
  const std::string out = dir_ + "/events.jsonl";
  Command events(
      {"sh", "-c", "exec \"$0\" --socket \"$1\" events --json > \"$2\"", bulkheadctl_path(), socket_, out},
      opts);
  // The subscription is live once the daemon counts it; until then events would be missed.
  for (int i = 0;
       i < 100 && !contains(http("GET", "/metrics").body.get<std::string>(), "bulkhead_event_subscribers 1");
       ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(ctl({"create", "ev1", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "ev1"}).ok());
  ASSERT_TRUE(ctl({"set", "ev1", "--restart", "always"}).ok());
  ASSERT_TRUE(ctl({"stop", "ev1", "--timeout", "10"}).ok());
  ASSERT_TRUE(ctl({"destroy", "ev1"}).ok());
  for (int i = 0; i < 200 && !contains(read_file(out), "container-destroyed"); ++i)
    std::this_thread::sleep_for(50ms);
  ::kill(events.pid(), SIGTERM);
  auto r = events.wait();
  r.out = read_file(out);
  std::vector<std::string> actions;
  for (const auto &line : split_lines(r.out)) {
    auto e = json::parse(line, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << "not a JSON line: " << line;
    if (e.value("name", "") != "ev1")
      continue;
    EXPECT_EQ(e["type"], "lifecycle") << line;
    EXPECT_GT(e["time"].get<int64_t>(), 0) << line;
    actions.push_back(e["action"]);
  }
  std::vector<std::string> want = {"container-created", "container-started", "container-updated",
                                   "container-stopped", "container-destroyed"};
  EXPECT_EQ(actions, want) << r;
}

TEST_F(DaemonApiTest, MetricsArePrometheusText) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "m1", "--template", "busybox", "--start"}).ok());
  ASSERT_TRUE(ctl({"create", "m2", "--template", "busybox"}).ok());
  auto h = http("GET", "/metrics");
  ASSERT_EQ(h.status, 200);
  std::string text = h.body.get<std::string>();
  EXPECT_TRUE(contains(text, "bulkhead_containers{state=\"running\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "bulkhead_containers{state=\"stopped\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "bulkhead_container_up{name=\"m1\",template=\"busybox\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "bulkhead_container_up{name=\"m2\",template=\"busybox\"} 0\n")) << text;
  // Every sample line is NAME{LABELS} VALUE or NAME VALUE, and every metric has HELP and TYPE.
  for (const auto &line : split_lines(text)) {
    if (line.empty() || line[0] == '#')
      continue;
    auto words = split_words(line);
    ASSERT_EQ(words.size(), 2u) << line;
    std::string name = words[0].substr(0, words[0].find('{'));
    EXPECT_TRUE(contains(text, "# TYPE " + name + " ")) << name;
    EXPECT_TRUE(contains(text, "# HELP " + name + " ")) << name;
    EXPECT_NO_THROW((void)std::stod(words[1])) << line;
  }
  long rss = 0;
  for (const auto &line : split_lines(text))
    if (line.rfind("bulkhead_daemon_resident_bytes ", 0) == 0)
      rss = std::stol(line.substr(31));
  EXPECT_GT(rss, 1 << 20) << text;
  ASSERT_TRUE(ctl({"destroy", "m1", "--force"}).ok());
}

TEST_F(DaemonApiTest, CancelledImportLeavesNoTemplate) {
  start_daemon();
  // Many small files make the import take seconds, so the cancel lands half way.
  std::string src = dir_ + "/many";
  ASSERT_TRUE(run_command({"mkdir", "-p", src + "/bin"}).ok());
  ASSERT_TRUE(
      run_command({"sh", "-c", "cd " + src + " && seq 1 60000 | xargs touch"}, {std::nullopt, 120s}).ok());
  ASSERT_TRUE(run_command({"tar", "-C", src, "-cf", dir_ + "/many.tar", "."}, {std::nullopt, 120s}).ok());
  auto h = http("POST", "/1.0/templates", R"({"name":"big","source":")" + dir_ + R"(/many.tar"})");
  ASSERT_EQ(h.status, 202) << h.body.dump();
  std::string op = h.body["id"];
  h = http("DELETE", "/1.0/operations/" + op);
  EXPECT_LT(h.status, 300) << h.body.dump();
  h = http("GET", "/1.0/operations/" + op + "/wait?timeout=60");
  ASSERT_EQ(h.status, 200) << h.body.dump();
  EXPECT_EQ(h.body["status"], "cancelled") << h.body.dump();
  EXPECT_EQ(json::parse(ctl({"template", "list", "--json"}).out).size(), 0u);
  auto left = run_command({"sh", "-c", "ls -A " + root_ + "/templates"});
  EXPECT_EQ(trim(left.out), "") << left;

  // Ctrl-C in bulkheadctl while it waits cancels the operation in the daemon too.
  CommandOptions opts;
  opts.timeout = 60s;
  Command import({bulkheadctl_path(), "--socket", socket_, "template", "import", "big", dir_ + "/many.tar"},
                 opts);
  for (int i = 0; i < 100; ++i) { // until the daemon has the operation running
    auto ops = http("GET", "/1.0/operations");
    if (contains(ops.body.dump(), "running"))
      break;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(import.pid(), SIGINT);
  auto r = import.wait();
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "interrupted: ")) << r;
  EXPECT_TRUE(contains(r.err, "cancel")) << r;
  EXPECT_EQ(json::parse(ctl({"template", "list", "--json"}).out).size(), 0u);
  left = run_command({"sh", "-c", "ls -A " + root_ + "/templates"});
  EXPECT_EQ(trim(left.out), "") << left;
}

} // namespace bh_test
