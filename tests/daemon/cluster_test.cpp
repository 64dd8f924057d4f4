// bulkheadd --cluster (issue 14, docs/cluster.md "Hosts in the cluster"): two real daemons join one
// real etcd (Debian's etcd-server, started here on free 127.0.0.1 ports, as
// tests/cluster/etcd_client_test.cpp does); each lists both hosts with their containers; a host
// killed with SIGKILL drops out within the lease's TTL and is back when it restarts; a daemon
// without --cluster answers {"enabled": false}; bad flags stop the daemon before it starts.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "daemon_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bh_test::CommandResult;
using bh_test::contains;
using bh_test::json;
using bh_test::read_file;
using bh_test::run_command;

// A free port on 127.0.0.1: bound, read, then closed for the process that will listen on it.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    ::close(fd);
  return port;
}

// Forks and execs argv with stdout/stderr appended to log; returns the pid.
pid_t spawn(const std::vector<std::string> &argv, const std::string &log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char *> cargv;
    for (const auto &a : argv)
      cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    _exit(127);
  }
  return pid;
}

void end(pid_t &pid, int sig) {
  if (pid <= 0)
    return;
  ::kill(pid, sig);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

// Host B is the fixture's daemon, host A a second one with its own root and socket. Both run in the
// host's network namespace: they only talk to etcd on 127.0.0.1 and listen on 127.0.0.1.
class DaemonClusterTest : public bh_test::DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (run_command({"sh", "-c", "command -v etcd"}).exit_code != 0)
      GTEST_FAIL() << "etcd is not installed: run tests/install-deps.sh (Debian's etcd-server)";
    a_dir_ = dir_ + "/host-a";
    ASSERT_TRUE(run_command({"mkdir", "-p", a_dir_}).ok());
    int client = free_port(), peer = free_port();
    ASSERT_TRUE(client && peer);
    etcd_url_ = "http://127.0.0.1:" + std::to_string(client);
    std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    etcd_argv_ = {"etcd",
                  "--name=bh-cluster-test",
                  "--data-dir=" + dir_ + "/etcd",
                  "--listen-client-urls=" + etcd_url_,
                  "--advertise-client-urls=" + etcd_url_,
                  "--listen-peer-urls=" + peer_url,
                  "--initial-advertise-peer-urls=" + peer_url,
                  "--initial-cluster=bh-cluster-test=" + peer_url,
                  "--initial-cluster-state=new"};
    start_etcd();
  }
  void start_etcd() {
    etcd_pid_ = spawn(etcd_argv_, dir_ + "/etcd.log");
    for (int i = 0; i < 100; ++i) {
      if (run_command({"curl", "-sf", etcd_url_ + "/health"}).ok())
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "etcd did not become healthy: " << read_file(dir_ + "/etcd.log");
  }
  void TearDown() override {
    stop_a();
    DaemonTest::TearDown();
    end(etcd_pid_, SIGTERM);
  }

  std::vector<std::string> cluster_flags(const std::string &host, int port) {
    return {"--cluster", etcd_url_, "--host-name", host, "--listen", "127.0.0.1:" + std::to_string(port)};
  }
  void start_a() {
    std::vector<std::string> argv = {
        bh_test::bulkheadd_path(), "--root",          a_dir_ + "/root",      "--socket",
        a_dir_ + "/a.sock",        "--cgroup-parent", cgroup_parent_ + "-a", "--no-lxcfs"};
    for (auto &f : cluster_flags("host-a", a_port_))
      argv.push_back(f);
    a_pid_ = spawn(argv, a_dir_ + "/bulkheadd.log");
    for (int i = 0; i < 300; ++i) {
      if (ctl_a({"list", "--json"}).ok())
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "host A's bulkheadd did not answer: " << read_file(a_dir_ + "/bulkheadd.log");
  }
  void stop_a() {
    if (a_pid_ > 0) {
      auto list = ctl_a({"list", "--json"});
      if (list.ok())
        for (auto &c : json::parse(list.out))
          ctl_a({"destroy", c["name"].get<std::string>(), "--force"});
    }
    end(a_pid_, SIGTERM);
    ::rmdir(("/sys/fs/cgroup" + cgroup_parent_ + "-a").c_str());
    ::rmdir(("/sys/fs/cgroup/unified" + cgroup_parent_ + "-a").c_str());
  }
  CommandResult ctl_a(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {bh_test::bulkheadctl_path(), "--socket", a_dir_ + "/a.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  // `cluster list --json` through one host's bulkheadctl, parsed.
  json cluster_of(bool a) {
    auto r = a ? ctl_a({"cluster", "list", "--json"}) : ctl({"cluster", "list", "--json"});
    EXPECT_TRUE(r.ok()) << r;
    return json::parse(r.out, nullptr, false);
  }
  static json host_in(const json &cluster, const std::string &name) {
    if (cluster.is_object() && cluster["hosts"].is_array())
      for (const auto &h : cluster["hosts"])
        if (h.value("name", "") == name)
          return h;
    return json();
  }
  // Polls `cluster list` on one host until pred holds; the last answer either way.
  json wait_cluster(bool a, const std::function<bool(const json &)> &pred, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = cluster_of(a);
      if (pred(last))
        return last;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "timed out; last cluster list: " << last.dump();
    return last;
  }
  static bool has_container(const json &host, const std::string &name, const std::string &state) {
    if (!host.is_object())
      return false;
    for (const auto &c : host.value("containers", json::array()))
      if (c.value("name", "") == name && c.value("state", "") == state)
        return true;
    return false;
  }

  std::string a_dir_, etcd_url_;
  std::vector<std::string> etcd_argv_;
  pid_t a_pid_ = -1, etcd_pid_ = -1;
  int a_port_ = free_port(), b_port_ = free_port();
};

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
    EXPECT_EQ(host_in(c, "host-a")["address"], "127.0.0.1:" + std::to_string(a_port_));
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

  // SIGKILL: no revoke; the lease expires (TTL 10 s) and B no longer lists A.
  auto killed_at = std::chrono::steady_clock::now();
  end(a_pid_, SIGKILL);
  wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a").is_null(); }, 20s);
  auto gone_after = std::chrono::steady_clock::now() - killed_at;
  EXPECT_GE(gone_after, 5s) << "A's keys should live until its lease expires, not vanish at once";
  EXPECT_TRUE(host_in(cluster_of(false), "host-b").is_object());

  // Restarted, A registers again with a fresh lease.
  start_a();
  json back = wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["state"] == "online"; }, 15s);
  EXPECT_EQ(host_in(back, "host-a")["address"], "127.0.0.1:" + std::to_string(a_port_));

  // A clean stop revokes the lease: A is gone at once (well within the TTL).
  auto stopped_at = std::chrono::steady_clock::now();
  stop_a();
  wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a").is_null(); }, 5s);
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
}

TEST_F(DaemonClusterTest, EtcdDownAtStartIsRetriedInTheBackground) {
  // The daemon starts and serves without etcd; it joins once etcd is back.
  end(etcd_pid_, SIGTERM);
  start_daemon(cluster_flags("host-b", b_port_));
  // The member's thread says so on its first attempt (a refused connection fails at once).
  for (int i = 0; i < 50 && !contains(read_file(dir_ + "/bulkheadd.log"), "cannot register with etcd"); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(contains(read_file(dir_ + "/bulkheadd.log"), "cannot register with etcd"))
      << read_file(dir_ + "/bulkheadd.log");
  EXPECT_EQ(http("GET", "/1.0/cluster").status, 500);
  import_busybox();
  ASSERT_TRUE(ctl({"create", "cb", "--template", "busybox"}).ok());
  // etcd back: the host joins with its container, without a restart.
  start_etcd();
  json c = wait_cluster(
      false, [](const json &c) { return has_container(host_in(c, "host-b"), "cb", "stopped"); }, 20s);
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
