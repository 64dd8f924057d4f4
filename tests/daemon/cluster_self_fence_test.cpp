// Self-fencing (`bulkheadd --cluster-self-fence`, daemon/self_fence.hpp, docs/cluster.md "Split
// brain"): real daemons on one real etcd, host A reaching etcd through a TCP proxy of the test's
// own that the test cuts. A partitioned from etcd while its standby B still reaches it freezes its
// protected container before its lease can expire; B's leader fails the container over; when A
// reaches etcd again it finds the placement moved and fences its copy (stopped, never started), so
// the two never ran at once. With all of etcd down, B cannot reach it either: A's container runs
// on (nobody can fail it over), as the issue asks of an etcd outage.
#include "cluster_fixture.hpp"

#include <poll.h>

#include <atomic>
#include <fstream>
#include <list>

namespace {

using namespace bh_cluster_test;
using namespace std::chrono_literals;
using bh_test::contains;
using bh_test::json;
using bh_test::read_file;

// Forwards 127.0.0.1:port() to 127.0.0.1:target, one thread polling every connection. cut() closes
// every connection and refuses new ones (a host cut off from etcd); heal() accepts again.
class TcpProxy {
public:
  explicit TcpProxy(int target) : target_(target) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listen_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && ::listen(listen_, 64) == 0 &&
        ::getsockname(listen_, reinterpret_cast<sockaddr *>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~TcpProxy() {
    quit_ = true;
    thread_.join();
    for (auto &p : pairs_)
      close_pair(p);
    ::close(listen_);
  }
  int port() const { return port_; }
  void cut() { cut_ = true; }
  void heal() { cut_ = false; }

private:
  struct Pair {
    int a = -1, b = -1;
  };
  static void close_pair(Pair &p) {
    if (p.a >= 0)
      ::close(p.a);
    if (p.b >= 0)
      ::close(p.b);
    p.a = p.b = -1;
  }
  int connect_target() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(target_));
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  void run() {
    char buf[65536];
    while (!quit_) {
      if (cut_)
        for (auto &p : pairs_)
          close_pair(p);
      pairs_.remove_if([](const Pair &p) { return p.a < 0; });
      std::vector<pollfd> fds = {{listen_, POLLIN, 0}};
      for (auto &p : pairs_) {
        fds.push_back({p.a, POLLIN, 0});
        fds.push_back({p.b, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 50) <= 0)
        continue;
      if (fds[0].revents & POLLIN) {
        int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        int t = c >= 0 && !cut_ ? connect_target() : -1;
        if (t < 0) {
          if (c >= 0)
            ::close(c); // cut: the connection is closed at once
        } else {
          pairs_.push_back({c, t});
        }
      }
      size_t i = 1;
      for (auto &p : pairs_) {
        for (int side = 0; side < 2; ++side, ++i) {
          if (i >= fds.size() || p.a < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          int from = side == 0 ? p.a : p.b, to = side == 0 ? p.b : p.a;
          ssize_t n = ::read(from, buf, sizeof buf);
          if (n <= 0 || ::write(to, buf, static_cast<size_t>(n)) != n)
            close_pair(p);
        }
      }
    }
  }

  int target_, listen_ = -1, port_ = 0;
  std::atomic<bool> quit_{false}, cut_{false};
  std::list<Pair> pairs_; // the thread's
  std::thread thread_;
};

class DaemonSelfFenceTest : public DaemonClusterTest {
protected:
  void start_b() {
    auto flags = cluster_flags("host-b", b_port_);
    flags.insert(flags.end(), kTtl3.begin(), kTtl3.end());
    start_daemon(flags);
  }
  // A protected container on host A (its record names host-b as standby, as `protect` writes it),
  // running; A reaches etcd through proxy_.
  void start_a_with_protected(const std::string &name) {
    proxy_ = std::make_unique<TcpProxy>(std::stoi(etcd_url_.substr(etcd_url_.rfind(':') + 1)));
    etcd_of_["a"] = "http://127.0.0.1:" + std::to_string(proxy_->port());
    std::vector<std::string> flags = kTtl3;
    flags.push_back("--cluster-self-fence");
    start_host("a", flags);
    ASSERT_NO_FATAL_FAILURE(join_trust("a"));
    ASSERT_TRUE(ctl_a({"template", "import", "busybox", busybox_rootfs_}).ok());
    ASSERT_TRUE(ctl_a({"create", name, "--template", "busybox", "--start", "--init", "/bin/sh", "-c",
                       "trap 'exit 0' USR2; while :; do sleep 1; done"})
                    .ok());
    end(host("a").pid, SIGTERM); // the container runs on under its monitor
    std::string record = host("a").dir + "/root/containers/" + name + "/container.json";
    auto j = json::parse(read_file(record), nullptr, false);
    ASSERT_TRUE(j.is_object()) << record;
    // A long interval: the host's CRIU cannot dump here (its rounds would only log failures).
    j["protection"] = {{"standby", "host-b"}, {"interval_ms", 3600000}, {"mode", "memory"}};
    std::ofstream(record) << j.dump();
    start_host("a", flags);
    wait_cluster(
        false, [&](const json &c) { return placement_in(c, name)["standby"] == "host-b"; }, 15s);
    ASSERT_EQ(state_on_a(name), "running");
  }
  std::string state_on_a(const std::string &name) {
    auto r = ctl_a({"info", name, "--json"});
    auto j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("state", "") : "";
  }
  json info_on_a(const std::string &name) {
    return json::parse(ctl_a({"info", name, "--json"}).out, nullptr, false);
  }
  // Polls until pred holds on A's info of NAME; the last info either way.
  json wait_a(const std::string &name, const std::function<bool(const json &)> &pred,
              std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = info_on_a(name);
      if (pred(last))
        return last;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "timed out; last info: " << last.dump() << "\n" << log_of("a");
    return last;
  }
  std::unique_ptr<TcpProxy> proxy_;
};

TEST_F(DaemonSelfFenceTest, CutOffHostFreezesItsProtectedContainerAndFencesItOnceItMoved) {
  start_b();
  import_busybox();
  ASSERT_NO_FATAL_FAILURE(start_a_with_protected("pf"));

  // A loses etcd; B (its standby) still reaches it. A freezes pf before its lease can expire.
  auto cut_at = std::chrono::steady_clock::now();
  proxy_->cut();
  wait_a(
      "pf", [](const json &i) { return i.value("state", "") == "frozen"; }, 10s);
  auto froze = std::chrono::steady_clock::now() - cut_at;
  // B's leader then fails pf over to B (the placement moves; B holds no replica in this test).
  json c = wait_cluster(
      false, [](const json &c) { return placement_in(c, "pf")["host"] == "host-b"; }, 20s);
  auto moved = std::chrono::steady_clock::now() - cut_at;
  std::cout << "frozen " << std::chrono::duration_cast<std::chrono::milliseconds>(froze).count()
            << " ms after the cut; placement moved after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(moved).count() << " ms\n";
  EXPECT_LT(froze, moved) << "the freeze must come before the failover";
  EXPECT_EQ(state_on_a("pf"), "frozen") << "frozen until etcd answers";
  EXPECT_TRUE(contains(log_of("a"), "pf frozen until etcd answers")) << log_of("a");

  // A reaches etcd again: the placement names B, so A's copy is fenced (stopped), never thawed.
  proxy_->heal();
  json i = wait_a(
      "pf",
      [](const json &i) { return i.value("fenced_by", "") == "host-b" && i.value("state", "") == "stopped"; },
      20s);
  // The placement round or the self-fence's own read fences it, whichever comes first; the latter
  // always says so.
  for (int n = 0; n < 50 && !contains(log_of("a"), "pf failed over to host-b while this host was cut off");
       ++n)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(contains(log_of("a"), "pf failed over to host-b while this host was cut off: fenced here"))
      << log_of("a");
  EXPECT_EQ(i["state"], "stopped");
  EXPECT_FALSE(ctl_a({"start", "pf"}).ok());
}

TEST_F(DaemonSelfFenceTest, EtcdDownForEveryoneLeavesItRunning) {
  start_b();
  import_busybox();
  ASSERT_NO_FATAL_FAILURE(start_a_with_protected("pr"));
  // B verified A's entry (its rounds reread the trust every 2 s): it answers A through the outage.
  wait_cluster(
      false, [](const json &c) { return host_in(c, "host-a")["trusted"] == true; }, 10s);
  // All of etcd stops: B cannot reach it either, so nobody can fail pr over, and A keeps it running.
  end(etcd_pid_, SIGTERM);
  std::this_thread::sleep_for(6s); // two TTLs
  EXPECT_EQ(state_on_a("pr"), "running") << log_of("a");
  EXPECT_TRUE(contains(log_of("a"), "etcd does not answer, nor does it to pr's standby host-b: pr runs on"))
      << log_of("a");
  start_etcd();
  std::this_thread::sleep_for(4s);
  EXPECT_EQ(state_on_a("pr"), "running") << log_of("a");
  EXPECT_FALSE(info_on_a("pr").contains("fenced_by")) << info_on_a("pr").dump();
}

} // namespace
