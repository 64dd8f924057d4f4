// The real bulkheadctl binary against a real HTTP server with canned API answers.
#include <atomic>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fake_daemon.hpp"

using namespace bulkhead::ctl::test;
using nlohmann::json;

namespace {

const char *kContainers = R"([
 {"name":"web1","state":"running","pid":4242,"template":"busybox",
  "limits":{"memory":268435456,"cpus":0.5,"pids":200},
  "usage":{"memory_bytes":12897484,"cpu_seconds":1.25,"pids":3},
  "restarts":0,"uptime_s":12,"restart_policy":"on-failure","onboot":false,"hostname":"web1",
  "env":[],"init":["/sbin/init"],"created_at":1764820000,"crash_loop":false,
  "last_exit":{"code":0,"signal":0,"at":0}},
 {"name":"db","state":"stopped","pid":0,"template":"debian-12",
  "limits":{"memory":null,"cpus":null,"pids":null},
  "usage":{"memory_bytes":null,"cpu_seconds":null,"pids":null},
  "restarts":2,"uptime_s":0,"restart_policy":"no","onboot":true,"hostname":"db",
  "env":["A=b"],"init":["/sbin/init"],"created_at":1764820000,"crash_loop":false,
  "last_exit":{"code":1,"signal":0,"at":1764820100}}
])";

std::vector<std::string> with_socket(const FakeDaemon &d, std::vector<std::string> args) {
  args.insert(args.begin(), {"--socket", d.socket()});
  return args;
}

} // namespace

TEST(CtlClient, DaemonNotRunning) {
  std::string dir = temp_dir();
  auto r = run_ctl({"--socket", dir + "/none.sock", "list"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bulkheadctl: cannot reach bulkheadd at " + dir +
                       "/none.sock: No such file or directory; start it with 'systemctl start bulkheadd' or "
                       "'bulkheadd --foreground'\n");
  ::rmdir(dir.c_str());
}

TEST(CtlClient, SocketFromEnvironmentAndRefused) {
  // A socket that is bound but not listening: a daemon that died without removing it.
  std::string dir = temp_dir(), path = dir + "/stale.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
  auto r = run_ctl({"info", "web1"}, {.env = {"BULKHEAD_SOCKET=" + path}});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(
      r.err,
      "bulkheadctl: cannot reach bulkheadd at " + path +
          ": Connection refused; start it with 'systemctl start bulkheadd' or 'bulkheadd --foreground'\n");
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(CtlClient, PermissionDenied) {
  FakeDaemon d;
  d.answer("GET", "/1.0/containers", 200, "[]");
  d.start();
  // The socket's directory is root's 0700: an ordinary user cannot reach it.
  auto r = run_ctl(with_socket(d, {"list"}), {.env = {}, .as_nobody = true});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bulkheadctl: permission denied on " + d.socket() +
                       ": bulkheadctl must run as root or as a member of group 'bulkhead'\n");
}

TEST(CtlClient, ErrorAnswerIsOneLine) {
  FakeDaemon d;
  d.answer("GET", "/1.0/containers/nope", 404, R"({"error": "container \"nope\" not found"})");
  d.answer("DELETE", "/1.0/containers/web1", 409,
           R"({"error": "container \"web1\" is running; stop it first or use --force"})");
  d.answer("GET", "/1.0/containers/broken", 500, "<html>oops</html>");
  d.start();
  auto r = run_ctl(with_socket(d, {"info", "nope"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bulkheadctl: container \"nope\" not found\n");
  r = run_ctl(with_socket(d, {"destroy", "web1"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bulkheadctl: container \"web1\" is running; stop it first or use --force\n");
  r = run_ctl(with_socket(d, {"info", "broken", "--json"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bulkheadctl: bulkheadd answered HTTP 500: <html>oops</html>\n");
}

TEST(CtlClient, ListTable) {
  FakeDaemon d;
  d.answer("GET", "/1.0/containers", 200, kContainers);
  d.start();
  auto r = run_ctl(with_socket(d, {"list"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "NAME  STATE    PID   TEMPLATE   MEMORY          CPU\n"
                   "web1  running  4242  busybox    12.3MiB/256MiB  1.25s\n"
                   "db    stopped  -     debian-12  -               -\n");
  r = run_ctl(with_socket(d, {"list", "-q"}));
  EXPECT_EQ(r.out, "web1\ndb\n");
  r = run_ctl(with_socket(d, {"list", "--json"}));
  EXPECT_EQ(json::parse(r.out), json::parse(kContainers));
}

TEST(CtlClient, InfoJsonIsTheApiAnswer) {
  FakeDaemon d;
  // Odd spacing and key order: --json must print the answer as it is, not a re-encoding.
  const std::string body = R"({"state": "running",  "name":"web1", "pid":4242, "limits":{"memory":null}})";
  d.answer("GET", "/1.0/containers/web1", 200, body);
  d.start();
  auto r = run_ctl(with_socket(d, {"info", "web1", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, body + "\n");
}

TEST(CtlClient, InfoReadable) {
  FakeDaemon d;
  d.answer("GET", "/1.0/containers/web1", 200, json::parse(kContainers)[0].dump());
  d.start();
  auto r = run_ctl(with_socket(d, {"info", "web1"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("state:    running\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory:   12.3MiB/256MiB\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pids:     3/200\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("created:  2025-12-04 03:46:40\n"), std::string::npos) << r.out;
}

TEST(CtlClient, TemplateImportPollsTheOperation) {
  FakeDaemon d;
  std::atomic<int> polls{0};
  d.handle("POST", "/1.0/templates", [](const httplib::Request &, httplib::Response &res) {
    res.status = 202;
    res.set_content(R"({"id":"op1","description":"import busybox","status":"running",
                        "progress":{"stage":"downloading","done":0,"total":0,"percent":0}})",
                    "application/json");
  });
  d.handle("GET", "/1.0/operations/op1/wait", [&](const httplib::Request &req, httplib::Response &res) {
    EXPECT_EQ(req.get_param_value("timeout"), "1");
    int n = ++polls;
    json op = {{"id", "op1"}, {"status", n < 3 ? "running" : "success"}, {"error", ""}};
    op["progress"] = {
        {"stage", "extracting"}, {"done", n * 8000000}, {"total", 24536678}, {"percent", n * 33}};
    res.set_content(op.dump(), "application/json");
  });
  d.answer(
      "GET", "/1.0/templates/busybox", 200,
      R"({"name":"busybox","source":"/srv/busybox.tar","size_bytes":24536678,"files":412,"used_by":[]})");
  d.start();
  auto r = run_ctl(with_socket(d, {"template", "import", "busybox", "/srv/busybox.tar"}));
  EXPECT_EQ(r.status, 0) << r.err;
  // Not a terminal: no progress bar, only the final line.
  EXPECT_EQ(r.out, "imported template busybox: 23.4MiB, 412 files\n");
  EXPECT_EQ(polls.load(), 3);
  auto reqs = d.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(json::parse(reqs[0].body), json({{"name", "busybox"}, {"source", "/srv/busybox.tar"}}));
}

TEST(CtlClient, FailedOperationIsAnError) {
  FakeDaemon d;
  d.answer("POST", "/1.0/templates", 202, R"({"id":"op2","status":"running"})");
  d.answer("GET", "/1.0/operations/op2/wait", 200,
           R"({"id":"op2","status":"failure","error":"extracting /srv/bad.tar: unexpected end of archive"})");
  d.start();
  auto r = run_ctl(with_socket(d, {"template", "import", "bad", "/srv/bad.tar"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bulkheadctl: extracting /srv/bad.tar: unexpected end of archive\n");
}

TEST(CtlClient, EventsStreamLines) {
  FakeDaemon d;
  d.handle("GET", "/1.0/events", [](const httplib::Request &, httplib::Response &res) {
    res.set_chunked_content_provider("application/json", [](size_t, httplib::DataSink &sink) {
      // Split mid-line on purpose: the client must join chunks into lines.
      std::string a =
          R"({"type":"lifecycle","action":"container-started","name":"web1","time":1764820000123,)";
      std::string b = "\"detail\":{\"pid\":4242}}\n";
      std::string c =
          R"({"type":"lifecycle","action":"container-died","name":"web1","time":1764820005000,"detail":{"code":137,"signal":"KILL"}})"
          "\n";
      sink.write(a.data(), a.size());
      sink.write(b.data(), b.size());
      sink.write(c.data(), c.size());
      sink.done();
      return true;
    });
  });
  d.start();
  auto r = run_ctl(with_socket(d, {"events"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "2025-12-04 03:46:40.123 container-started web1 pid=4242\n"
                   "2025-12-04 03:46:45.000 container-died web1 code=137 signal=KILL\n");
  r = run_ctl(with_socket(d, {"events", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  EXPECT_EQ(json::parse(r.out.substr(0, r.out.find('\n')))["detail"]["pid"], 4242);
}

TEST(CtlClient, CreateSendsTheRequest) {
  FakeDaemon d;
  d.answer("POST", "/1.0/containers", 201, json::parse(kContainers)[1].dump());
  d.start();
  auto r = run_ctl(with_socket(d, {"create",  "web2",  "--template", "busybox",      "--memory", "256M",
                                   "--cpus",  "0.5",   "--pids",     "200",          "--env",    "A=b",
                                   "--env",   "C=d=e", "--restart",  "on-failure:3", "--onboot", "--init",
                                   "/bin/sh", "-c",    "echo hi",    "--memory"}));
  EXPECT_EQ(r.status, 0) << r.err;
  auto reqs = d.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/1.0/containers");
  EXPECT_EQ(json::parse(reqs[0].body),
            json::parse(R"({"name":"web2","template":"busybox","memory":268435456,"cpus":0.5,"pids":200,
                            "env":["A=b","C=d=e"],"restart":"on-failure:3","onboot":true,
                            "init":["/bin/sh","-c","echo hi","--memory"]})"));
}

// Unprivileged containers (docs/unprivileged.md): the flags become the API's fields, both at
// once is a usage error, and info says which host ids the container's ids are.
TEST(CtlClient, CreatePrivilegedOrUnprivileged) {
  FakeDaemon d;
  json answer = json::parse(kContainers)[1];
  answer["privileged"] = false;
  answer["idmap"] = {{"uid", 165536}, {"gid", 231072}, {"size", 65536}};
  d.answer("POST", "/1.0/containers", 201, answer.dump());
  d.answer("GET", "/1.0/containers/web2", 200, answer.dump());
  d.start();
  auto r = run_ctl(with_socket(d, {"create", "web2", "--template", "busybox", "--unprivileged"}));
  EXPECT_EQ(r.status, 0) << r.err;
  r = run_ctl(with_socket(d, {"create", "web2", "--template", "busybox", "--privileged"}));
  EXPECT_EQ(r.status, 0) << r.err;
  r = run_ctl(with_socket(d, {"create", "web2", "--template", "busybox", "--privileged", "--unprivileged"}));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
  auto reqs = d.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(json::parse(reqs[0].body)["unprivileged"], true) << reqs[0].body;
  EXPECT_FALSE(json::parse(reqs[0].body).contains("privileged")) << reqs[0].body;
  EXPECT_EQ(json::parse(reqs[1].body)["privileged"], true) << reqs[1].body;
  r = run_ctl(with_socket(d, {"info", "web2"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(
      r.out.find("unprivileged: 0-65535 inside are uids 165536-231071, gids 231072-296607 on the host\n"),
      std::string::npos)
      << r.out;
}

TEST(CtlClient, StateChangesWaitForTheirOperation) {
  FakeDaemon d;
  d.answer("PUT", "/1.0/containers/web1/state", 202, R"({"id":"op3","status":"running"})");
  d.answer("GET", "/1.0/operations/op3/wait", 200, R"({"id":"op3","status":"success","error":""})");
  d.answer("PATCH", "/1.0/containers/web1", 200, json::parse(kContainers)[0].dump());
  d.answer("DELETE", "/1.0/containers/web1", 200, "{}");
  d.start();
  EXPECT_EQ(run_ctl(with_socket(d, {"stop", "web1"})).status, 0);
  EXPECT_EQ(run_ctl(with_socket(d, {"kill", "web1", "sigterm"})).status, 0);
  EXPECT_EQ(run_ctl(with_socket(d, {"kill", "web1"})).status, 0);
  EXPECT_EQ(run_ctl(with_socket(d, {"restart", "web1", "--timeout", "5"})).status, 0);
  EXPECT_EQ(run_ctl(with_socket(d, {"freeze", "web1"})).status, 0);
  EXPECT_EQ(run_ctl(with_socket(d, {"set", "web1", "--memory", "none", "--cpus", "2", "--no-onboot"})).status,
            0);
  EXPECT_EQ(run_ctl(with_socket(d, {"destroy", "web1", "--force"})).status, 0);
  std::vector<json> bodies;
  std::vector<std::string> paths;
  for (const auto &req : d.requests()) {
    if (req.method != "GET") {
      bodies.push_back(req.body.empty() ? json() : json::parse(req.body));
      paths.push_back(req.method + " " + req.path);
    }
  }
  ASSERT_EQ(bodies.size(), 7u);
  EXPECT_EQ(bodies[0], json::parse(R"({"action":"stop","timeout":30})"));
  EXPECT_EQ(bodies[1], json::parse(R"({"action":"kill","signal":"TERM"})"));
  EXPECT_EQ(bodies[2], json::parse(R"({"action":"kill","signal":"KILL"})"));
  EXPECT_EQ(bodies[3], json::parse(R"({"action":"restart","timeout":5})"));
  EXPECT_EQ(bodies[4], json::parse(R"({"action":"freeze"})"));
  EXPECT_EQ(bodies[5], json::parse(R"({"memory":null,"cpus":2.0,"onboot":false})"));
  EXPECT_EQ(paths[6], "DELETE /1.0/containers/web1?force=1");
}

// exec and console ask the API for the monitor's socket, then go there; a monitor that is gone is
// a one-line error naming its socket.
TEST(CtlClient, ExecGoesToTheMonitorSocket) {
  FakeDaemon d;
  const std::string monitor = d.dir() + "/monitor.sock";
  d.answer("GET", "/1.0/containers/web1/console", 200, json({{"socket", monitor}}).dump());
  d.answer("GET", "/1.0/containers/gone/console", 404, R"({"error": "container \"gone\" not found"})");
  d.start();
  auto r = run_ctl(with_socket(d, {"exec", "web1", "--", "true"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("bulkheadctl: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(monitor), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run_ctl(with_socket(d, {"console", "gone"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "bulkheadctl: container \"gone\" not found\n");
  EXPECT_EQ(d.requests().size(), 2u);
}

// `host evacuate` sends what it was given; when the evacuation fails it still prints the per-container
// rows (read back from the finished operation) and reports the operation's error.
TEST(CtlClient, HostEvacuateSendsTheRequestAndPrintsRowsOfAFailure) {
  FakeDaemon d;
  d.answer("POST", "/1.0/host/evacuate", 202, R"({"id":"ev1","status":"running"})");
  d.answer(
      "GET", "/1.0/operations/ev1/wait", 200,
      R"x({"id":"ev1","status":"failure","error":"evacuating h1 to remote h2 (198.18.100.2:8443): 1 of 2 containers did not move and stay here: b (network n missing)"})x");
  d.answer("GET", "/1.0/operations/ev1", 200, R"({"id":"ev1","status":"failure","metadata":{
      "host":"h1","remote":"h2","address":"198.18.100.2:8443","dry_run":false,"moved":1,"failed":1,"skipped":0,
      "containers":[{"name":"a","state":"running","mode":"cold","result":"moved","error":"","downtime_ms":90,"bytes":2048},
                    {"name":"b","state":"running","mode":"cold","result":"failed","error":"network n missing"}]}})");
  d.start();
  auto r = run_ctl(with_socket(d, {"host", "evacuate", "h2", "--parallel", "2", "--cold"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "NAME  STATE    MODE  RESULT  DOWNTIME  SENT  ERROR\n"
                   "a     running  cold  moved   90 ms     2KiB  -\n"
                   "b     running  cold  failed  -         -     network n missing\n"
                   "evacuated h1 to h2 (198.18.100.2:8443): 1 moved, 1 failed, 0 skipped\n");
  EXPECT_EQ(r.err, "bulkheadctl: evacuating h1 to remote h2 (198.18.100.2:8443): 1 of 2 containers did not "
                   "move and stay here: b (network n missing)\n");
  auto reqs = d.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/1.0/host/evacuate");
  EXPECT_EQ(json::parse(reqs[0].body), json({{"remote", "h2"}, {"parallel", 2}, {"mode", "cold"}}));
  r = run_ctl(with_socket(d, {"host", "evacuate", "h2", "--dry-run", "--live"}));
  json last;
  for (const auto &q : d.requests())
    if (q.path == "/1.0/host/evacuate")
      last = json::parse(q.body);
  EXPECT_EQ(last, json({{"remote", "h2"}, {"parallel", 1}, {"mode", "live"}, {"dry_run", true}}));
}

TEST(CtlClient, ListAndInfoSayTheHostIsBeingEvacuated) {
  FakeDaemon d;
  d.answer("GET", "/1.0/containers", 200, "[]");
  d.answer("GET", "/1.0/containers/web1", 200, json::parse(kContainers)[0].dump());
  d.answer("GET", "/1.0/host", 200, R"({"host_name":"h1","state":"evacuating","containers":1,
      "evacuation":{"operation":"ev1","remote":"h2","parallel":1,"mode":null,"started_at":0,"done":0,"total":1}})");
  d.start();
  const std::string note = "host h1 is being evacuated to h2 (operation ev1, 0 of 1 done): it creates and "
                           "starts no container until "
                           "that ends\n";
  auto r = run_ctl(with_socket(d, {"list"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, note + "NAME  STATE  PID  TEMPLATE  MEMORY  CPU\n");
  r = run_ctl(with_socket(d, {"list", "--json"}));
  EXPECT_EQ(r.out, "[]\n");
  r = run_ctl(with_socket(d, {"info", "web1"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.substr(r.out.size() - note.size()), note) << r.out;
  r = run_ctl(with_socket(d, {"host", "info"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("state: evacuating\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("evacuating to: h2\n"), std::string::npos) << r.out;
}
