// The cluster tests' fixture (tests/daemon/cluster_test.cpp, cluster_failover_test.cpp): a real
// etcd (Debian's etcd-server) on free 127.0.0.1 ports, started per test, and bulkheadd hosts joining
// it: host B is DaemonTest's own daemon, the others (A, C, ...) run with roots and sockets of their
// own. All run in the host's network namespace: they only talk to etcd and listen on 127.0.0.1.
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <thread>

#include "daemon_fixture.hpp"

namespace bh_cluster_test {

using namespace std::chrono_literals;
using bh_test::CommandResult;
using bh_test::contains;
using bh_test::json;
using bh_test::read_file;
using bh_test::run_command;

// The failover target: a lease TTL of 3 s (a dead host is declared dead within about 3 s).
inline const std::vector<std::string> kTtl3 = {"--cluster-ttl", "3"};

// A free port on 127.0.0.1: bound, read, then closed for the process that will listen on it.
inline int free_port() {
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
inline pid_t spawn(const std::vector<std::string> &argv, const std::string &log) {
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

inline void end(pid_t &pid, int sig) {
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
    for (auto &[id, h] : hosts_)
      stop_host(id);
    DaemonTest::TearDown();
    end(etcd_pid_, SIGTERM);
  }

  std::vector<std::string> cluster_flags(const std::string &host, int port) {
    return {"--cluster", etcd_url_, "--host-name", host, "--listen", "127.0.0.1:" + std::to_string(port)};
  }
  // A host of its own: "a" for host-a (dir host-a/, socket host-a/a.sock, cgroup parent ...-a).
  struct Host {
    std::string id, dir;
    int port = free_port();
    pid_t pid = -1;
  };
  Host &host(const std::string &id) {
    auto &h = hosts_[id];
    if (h.id.empty()) {
      h.id = id;
      h.dir = dir_ + "/host-" + id;
      EXPECT_TRUE(run_command({"mkdir", "-p", h.dir}).ok());
    }
    return h;
  }
  // Starts host ID's bulkheadd (extra flags appended) and waits until it answers. With expect_up
  // false it only starts it (for a start meant to fail).
  void start_host(const std::string &id, const std::vector<std::string> &extra = {}) {
    Host &h = host(id);
    std::vector<std::string> argv = {
        bh_test::bulkheadd_path(), "--root", h.dir + "/root", "--socket", h.dir + "/" + id + ".sock",
        "--cgroup-parent", cgroup_parent_ + "-" + id, "--no-lxcfs",
        // As DaemonTest::start_daemon: bulkheadd's default id pool whatever /etc/subuid says.
        "--subuid-file", h.dir + "/no-subuid", "--subgid-file", h.dir + "/no-subgid"};
    for (auto &f : cluster_flags("host-" + id, h.port))
      argv.push_back(f);
    if (auto o = etcd_of_.find(id); o != etcd_of_.end())
      argv[argv.size() - 5] = o->second; // --cluster's value: this host reaches etcd elsewhere
    argv.insert(argv.end(), extra.begin(), extra.end());
    h.pid = spawn(argv, h.dir + "/bulkheadd.log");
    for (int i = 0; i < 300; ++i) {
      if (ctl_on(id, {"list", "--json"}).ok())
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "host " << id << "'s bulkheadd did not answer: " << read_file(h.dir + "/bulkheadd.log");
  }
  void stop_host(const std::string &id) {
    Host &h = host(id);
    if (h.pid > 0) {
      auto list = ctl_on(id, {"list", "--json"});
      if (list.ok())
        for (auto &c : json::parse(list.out))
          ctl_on(id, {"destroy", c["name"].get<std::string>(), "--force"});
    }
    end(h.pid, SIGTERM);
    ::rmdir(("/sys/fs/cgroup" + cgroup_parent_ + "-" + id).c_str());
    ::rmdir(("/sys/fs/cgroup/unified" + cgroup_parent_ + "-" + id).c_str());
  }
  CommandResult ctl_on(const std::string &id, const std::vector<std::string> &args) {
    std::vector<std::string> argv = {bh_test::bulkheadctl_path(), "--socket",
                                     host(id).dir + "/" + id + ".sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  std::string log_of(const std::string &id) { return read_file(host(id).dir + "/bulkheadd.log"); }
  void start_a() { start_host("a"); }
  void stop_a() { stop_host("a"); }
  CommandResult ctl_a(const std::vector<std::string> &args) { return ctl_on("a", args); }
  // etcdctl (v3) against the test's etcd: puts and reads keys as another host would.
  CommandResult etcdctl(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {"env", "ETCDCTL_API=3", "etcdctl", "--endpoints=" + etcd_url_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  // The value of one key as JSON (null when absent).
  json etcd_json(const std::string &key) {
    auto r = etcdctl({"get", key, "--print-value-only"});
    EXPECT_TRUE(r.ok()) << r;
    return json::parse(r.out, nullptr, false);
  }
  // `cluster list --json` through one host's bulkheadctl, parsed.
  json cluster_of(bool a) { return cluster_on(a ? "a" : "b"); }
  // "b" is the fixture's daemon.
  json cluster_on(const std::string &id) {
    auto r = id == "b" ? ctl({"cluster", "list", "--json"}) : ctl_on(id, {"cluster", "list", "--json"});
    EXPECT_TRUE(r.ok()) << r;
    return json::parse(r.out, nullptr, false);
  }
  // The token `cluster token NAME` printed on its last line, made on host ID ("b": the fixture's).
  std::string token_from(const std::string &id, const std::string &name) {
    auto r = id == "b" ? ctl({"cluster", "token", name}) : ctl_on(id, {"cluster", "token", name});
    EXPECT_TRUE(r.ok()) << r;
    std::string out = r.out.substr(0, r.out.find_last_not_of('\n') + 1);
    return out.substr(out.rfind('\n') + 1);
  }
  // Host ID joins the cluster's trust with a token from host "b" (docs/remotes.md).
  void join_trust(const std::string &id) {
    auto r = ctl_on(id, {"cluster", "join", "--token", token_from("b", "host-" + id)});
    ASSERT_TRUE(r.ok()) << r << log_of(id);
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
    return wait_cluster_on(a ? "a" : "b", pred, timeout);
  }
  json wait_cluster_on(const std::string &id, const std::function<bool(const json &)> &pred,
                       std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = cluster_on(id);
      if (pred(last))
        return last;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "timed out; last cluster list: " << last.dump();
    return last;
  }
  static json placement_in(const json &cluster, const std::string &name) {
    if (cluster.is_object() && cluster["placements"].is_array())
      for (const auto &p : cluster["placements"])
        if (p.value("name", "") == name)
          return p;
    return json();
  }
  static bool has_container(const json &host, const std::string &name, const std::string &state) {
    if (!host.is_object())
      return false;
    for (const auto &c : host.value("containers", json::array()))
      if (c.value("name", "") == name && c.value("state", "") == state)
        return true;
    return false;
  }

  std::string etcd_url_;
  std::vector<std::string> etcd_argv_;
  pid_t etcd_pid_ = -1;
  std::map<std::string, Host> hosts_;
  std::map<std::string, std::string> etcd_of_; // a host's own --cluster URL (a proxy in front of etcd)
  int b_port_ = free_port();
};

} // namespace bh_cluster_test
