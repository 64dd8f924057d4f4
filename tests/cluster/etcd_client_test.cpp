// The etcd client against a real etcd (Debian's etcd-server, installed by tests/install-deps.sh):
// one etcd per test binary on free 127.0.0.1 ports with a temporary data dir under /var/tmp.
#include "cluster/etcd_client.hpp"
#include "tests/support/loopback_port.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

extern char **environ;

namespace {

using bulkhead::cluster::EtcdClient;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A socket bound to a free port on 127.0.0.1; closing it frees the port for etcd (the kernel does
// not hand the same ephemeral port out again right away).
using BoundPort = bh_test::LoopbackPort;

std::string find_in_path(const std::string &name) {
  const char *path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0)
      return dir + "/" + name;
  return {};
}

std::string read_tail(const fs::path &p, size_t max = 2000) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max ? s.substr(s.size() - max) : s;
}

class EtcdTest : public ::testing::Test {
protected:
  static inline std::string setup_error;
  static inline pid_t etcd_pid = -1;
  static inline fs::path work_dir;
  static inline std::string url;

  static void SetUpTestSuite() {
    std::string etcd = find_in_path("etcd");
    if (etcd.empty()) {
      setup_error = "etcd is not installed (not found in PATH): run tests/install-deps.sh, which installs "
                    "Debian's etcd-server";
      return;
    }
    char tmpl[] = "/var/tmp/bulkhead-etcd-test-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      setup_error = std::string("mkdtemp /var/tmp/bulkhead-etcd-test-XXXXXX: ") + std::strerror(errno);
      return;
    }
    work_dir = tmpl;
    BoundPort client_port, peer_port;
    if (!client_port.port || !peer_port.port) {
      setup_error = "could not find free ports on 127.0.0.1";
      return;
    }
    url = "http://127.0.0.1:" + std::to_string(client_port.port);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port.port);
    client_port.close();
    peer_port.close();
    std::vector<std::string> args = {etcd,
                                     "--name=bulkhead-test",
                                     "--data-dir=" + (work_dir / "data").string(),
                                     "--listen-client-urls=" + url,
                                     "--advertise-client-urls=" + url,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=bulkhead-test=" + peer,
                                     "--initial-cluster-state=new"};
    std::vector<char *> argv;
    for (auto &a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string out = (work_dir / "etcd.out").string();
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = ::posix_spawn(&etcd_pid, etcd.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      etcd_pid = -1;
      setup_error = "starting " + etcd + ": " + std::strerror(rc);
      return;
    }
    auto client = EtcdClient::create({url}, 1s);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(etcd_pid, &status, WNOHANG) == etcd_pid) {
        etcd_pid = -1;
        setup_error = "etcd exited during startup (status " + std::to_string(status) +
                      "): " + read_tail(work_dir / "etcd.out");
        return;
      }
      auto r = client->get("bulkhead-test/ready");
      if (r)
        return;
      last = r.error().text();
      std::this_thread::sleep_for(100ms);
    }
    setup_error =
        "etcd at " + url + " did not answer within 30 s: " + last + "\n" + read_tail(work_dir / "etcd.out");
  }

  static void TearDownTestSuite() {
    if (etcd_pid > 0) {
      ::kill(etcd_pid, SIGTERM);
      bool gone = false;
      for (int i = 0; i < 100 && !gone; ++i) {
        if (::waitpid(etcd_pid, nullptr, WNOHANG) == etcd_pid)
          gone = true;
        else
          std::this_thread::sleep_for(50ms);
      }
      if (!gone) {
        ::kill(etcd_pid, SIGKILL);
        ::waitpid(etcd_pid, nullptr, 0);
      }
      etcd_pid = -1;
    }
    if (!work_dir.empty()) {
      std::error_code ec;
      fs::remove_all(work_dir, ec);
    }
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error.empty()) << setup_error;
    auto c = EtcdClient::create({url});
    ASSERT_TRUE(c) << c.error().text();
    client.emplace(std::move(*c));
    // Each test works under its own prefix, so tests sharing one etcd cannot see each other's keys.
    prefix = std::string("/t/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }

  std::optional<EtcdClient> client;
  std::string prefix;
};

TEST(EtcdBase64, RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += char(i);
  for (size_t n = 0; n <= all.size(); n += 1) {
    std::string s = all.substr(0, n);
    auto back = bulkhead::cluster::base64_decode(bulkhead::cluster::base64_encode(s));
    ASSERT_TRUE(back) << back.error().text();
    EXPECT_EQ(*back, s) << "length " << n;
  }
  EXPECT_EQ(bulkhead::cluster::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(bulkhead::cluster::base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(bulkhead::cluster::base64_decode("Zm9"));
  EXPECT_FALSE(bulkhead::cluster::base64_decode("Z=9v"));
  EXPECT_FALSE(bulkhead::cluster::base64_decode("Zm9*"));
  EXPECT_EQ(bulkhead::cluster::prefix_range_end("a/"), "a0");
  EXPECT_EQ(bulkhead::cluster::prefix_range_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(bulkhead::cluster::prefix_range_end(""), std::string(1, '\0'));
}

TEST(EtcdEndpoints, RejectsMalformedEndpoints) {
  for (std::string bad : {"127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1", "http://h:0",
                          "http://h:99999", "http://h:12/x"}) {
    auto c = EtcdClient::create({bad});
    ASSERT_FALSE(c) << bad;
    EXPECT_NE(c.error().text().find(bad), std::string::npos) << c.error().text();
  }
  EXPECT_FALSE(EtcdClient::create({}));
}

TEST_F(EtcdTest, PutGetListRemoveRoundTripIsBinarySafe) {
  std::string binary("\0\x01\xff\xfe\n\"\\{}=", 11);
  std::string key_bin = prefix + std::string("k\0\xff", 3);
  ASSERT_TRUE(client->put(prefix + "a", "alpha"));
  ASSERT_TRUE(client->put(key_bin, binary));
  ASSERT_TRUE(client->put(prefix + "c", ""));
  // A sibling prefix sharing the first bytes must not show up in the listing.
  ASSERT_TRUE(client->put(prefix.substr(0, prefix.size() - 1) + "0", "outside"));

  auto a = client->get(prefix + "a");
  ASSERT_TRUE(a) << a.error().text();
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->value, "alpha");
  EXPECT_GT((*a)->mod_revision, 0);
  EXPECT_EQ((*a)->lease, 0);

  auto b = client->get(key_bin);
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->value, binary);

  auto missing = client->get(prefix + "nope");
  ASSERT_TRUE(missing) << missing.error().text();
  EXPECT_FALSE(missing->has_value());

  auto all = client->list(prefix);
  ASSERT_TRUE(all) << all.error().text();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].first, prefix + "a");
  EXPECT_EQ((*all)[1].first, prefix + "c");
  EXPECT_EQ((*all)[1].second.value, "");
  EXPECT_EQ((*all)[2].first, key_bin);
  EXPECT_EQ((*all)[2].second.value, binary);

  auto removed = client->remove(prefix + "a");
  ASSERT_TRUE(removed) << removed.error().text();
  EXPECT_TRUE(*removed);
  auto again = client->remove(prefix + "a");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto gone = client->get(prefix + "a");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());

  auto n = client->remove_prefix(prefix);
  ASSERT_TRUE(n) << n.error().text();
  EXPECT_EQ(*n, 2);
  auto empty = client->list(prefix);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto outside = client->get(prefix.substr(0, prefix.size() - 1) + "0");
  ASSERT_TRUE(outside && outside->has_value());
  EXPECT_EQ((*outside)->value, "outside");
  ASSERT_TRUE(client->remove(prefix.substr(0, prefix.size() - 1) + "0"));
}

TEST_F(EtcdTest, LeaseKeyExpiresUnlessKeptAlive) {
  auto idle = client->grant_lease(2);
  auto kept = client->grant_lease(2);
  ASSERT_TRUE(idle) << idle.error().text();
  ASSERT_TRUE(kept) << kept.error().text();
  ASSERT_NE(*idle, *kept);
  ASSERT_TRUE(client->put(prefix + "idle", "x", *idle));
  ASSERT_TRUE(client->put(prefix + "kept", "y", *kept));
  auto withlease = client->get(prefix + "kept");
  ASSERT_TRUE(withlease && withlease->has_value());
  EXPECT_EQ((*withlease)->lease, *kept);

  // 5 s is well past the 2 s TTL (etcd checks expiry every 500 ms); refresh "kept" twice a second.
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    auto ttl = client->keep_alive(*kept);
    ASSERT_TRUE(ttl) << ttl.error().text();
    EXPECT_GT(*ttl, 0);
    EXPECT_LE(*ttl, 2);
    std::this_thread::sleep_for(500ms);
  }
  auto idle_key = client->get(prefix + "idle");
  ASSERT_TRUE(idle_key) << idle_key.error().text();
  EXPECT_FALSE(idle_key->has_value()) << "the key of a lease nobody refreshed is still there";
  auto kept_key = client->get(prefix + "kept");
  ASSERT_TRUE(kept_key) << kept_key.error().text();
  ASSERT_TRUE(kept_key->has_value()) << "the key of a refreshed lease vanished";
  EXPECT_EQ((*kept_key)->value, "y");

  // An expired lease cannot be refreshed: the caller learns it lost its keys.
  auto dead = client->keep_alive(*idle);
  ASSERT_FALSE(dead);
  EXPECT_NE(dead.error().text().find("expired"), std::string::npos) << dead.error().text();

  // Revoking deletes the lease's keys at once.
  ASSERT_TRUE(client->revoke_lease(*kept));
  auto revoked = client->get(prefix + "kept");
  ASSERT_TRUE(revoked);
  EXPECT_FALSE(revoked->has_value());
  EXPECT_FALSE(client->revoke_lease(*kept)) << "revoking an unknown lease must be an error";
}

TEST_F(EtcdTest, CreateIfAbsentHasExactlyOneWinnerAmongRacingThreads) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 10; ++round) {
    std::string key = prefix + "leader-" + std::to_string(round);
    std::atomic<int> wins{0}, errors{0};
    std::vector<int> won(kThreads, 0);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    const EtcdClient &shared = *client; // one client, used by every thread at once
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        start.arrive_and_wait(); // all threads hit etcd together
        auto r = shared.create_if_absent(key, "node-" + std::to_string(t));
        if (!r) {
          ++errors;
        } else if (*r) {
          ++wins;
          won[t] = 1;
        }
      });
    for (auto &th : threads)
      th.join();
    ASSERT_EQ(errors.load(), 0);
    ASSERT_EQ(wins.load(), 1) << "round " << round;
    int winner = int(std::find(won.begin(), won.end(), 1) - won.begin());
    auto v = client->get(key);
    ASSERT_TRUE(v && v->has_value());
    EXPECT_EQ((*v)->value, "node-" + std::to_string(winner));
  }
  // A key that exists is never overwritten.
  auto late = client->create_if_absent(prefix + "leader-0", "late");
  ASSERT_TRUE(late);
  EXPECT_FALSE(*late);
  ASSERT_TRUE(client->remove_prefix(prefix));
}

TEST_F(EtcdTest, CompareAndSwapWithStaleRevisionChangesNothing) {
  std::string key = prefix + "placement";
  ASSERT_TRUE(client->put(key, "host-a"));
  auto v1 = client->get(key);
  ASSERT_TRUE(v1 && v1->has_value());
  ASSERT_TRUE(client->put(key, "host-b"));
  auto v2 = client->get(key);
  ASSERT_TRUE(v2 && v2->has_value());
  ASSERT_GT((*v2)->mod_revision, (*v1)->mod_revision);

  auto stale = client->compare_and_swap(key, (*v1)->mod_revision, "host-c");
  ASSERT_TRUE(stale) << stale.error().text();
  EXPECT_FALSE(*stale);
  auto after = client->get(key);
  ASSERT_TRUE(after && after->has_value());
  EXPECT_EQ((*after)->value, "host-b");
  EXPECT_EQ((*after)->mod_revision, (*v2)->mod_revision);

  auto fresh = client->compare_and_swap(key, (*v2)->mod_revision, "host-c");
  ASSERT_TRUE(fresh) << fresh.error().text();
  EXPECT_TRUE(*fresh);
  auto now = client->get(key);
  ASSERT_TRUE(now && now->has_value());
  EXPECT_EQ((*now)->value, "host-c");
  EXPECT_GT((*now)->mod_revision, (*v2)->mod_revision);
  ASSERT_TRUE(client->remove_prefix(prefix));
}

// put_if/remove_if: one txn over several keys. A failover's write holds only while the leader's own
// key is unchanged and the dead host's key is still absent (revision 0).
TEST_F(EtcdTest, GuardedWritesHoldOnlyWhileEveryGuardHolds) {
  std::string leader = prefix + "leader", host = prefix + "host", key = prefix + "placement";
  ASSERT_TRUE(client->put(leader, "me"));
  ASSERT_TRUE(client->put(key, "a"));
  auto l = client->get(leader);
  auto p = client->get(key);
  ASSERT_TRUE(l && l->has_value() && p && p->has_value());
  std::vector<bulkhead::cluster::Guard> guards = {
      {leader, (*l)->mod_revision}, {host, 0}, {key, (*p)->mod_revision}};
  // The "dead" host is back: its key exists, so nothing is written.
  ASSERT_TRUE(client->put(host, "back"));
  auto r = client->put_if(guards, key, "b");
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_FALSE(*r);
  EXPECT_EQ((*client->get(key))->value, "a");
  ASSERT_TRUE(client->remove(host));
  // Every guard holds: written.
  r = client->put_if(guards, key, "b");
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_TRUE(*r);
  EXPECT_EQ((*client->get(key))->value, "b");
  // The leader key changed (another leader): a stale leader's write and delete both fail.
  ASSERT_TRUE(client->put(leader, "other"));
  auto p2 = client->get(key);
  guards = {{leader, (*l)->mod_revision}, {key, (*p2)->mod_revision}};
  r = client->put_if(guards, key, "c");
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  auto d = client->remove_if(guards, key);
  ASSERT_TRUE(d);
  EXPECT_FALSE(*d);
  EXPECT_EQ((*client->get(key))->value, "b");
  auto d2 = client->remove_if({{key, (*p2)->mod_revision}}, key);
  ASSERT_TRUE(d2) << d2.error().text();
  EXPECT_TRUE(*d2);
  EXPECT_FALSE(client->get(key)->has_value());
  ASSERT_TRUE(client->remove_prefix(prefix));
}

TEST_F(EtcdTest, DeadFirstEndpointFallsThroughToTheNext) {
  BoundPort dead; // bound, not listening: connecting is refused
  ASSERT_NE(dead.port, 0);
  auto c = EtcdClient::create({"http://127.0.0.1:" + std::to_string(dead.port), url});
  ASSERT_TRUE(c) << c.error().text();
  ASSERT_TRUE(c->put(prefix + "k", "v"));
  auto v = c->get(prefix + "k");
  ASSERT_TRUE(v) << v.error().text();
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->value, "v");
  ASSERT_TRUE(c->remove_prefix(prefix));
}

TEST_F(EtcdTest, HungFirstEndpointIsSkippedOnlyByRequestsThatChangeNothing) {
  // A member cut off from its quorum: it accepts connections and never answers.
  BoundPort hung(true);
  ASSERT_NE(hung.port, 0);
  std::string u = "http://127.0.0.1:" + std::to_string(hung.port);
  ASSERT_TRUE(client->put(prefix + "k", "v"));
  auto lease = client->grant_lease(30);
  ASSERT_TRUE(lease) << lease.error().text();
  auto c = EtcdClient::create({u, url}, 1s);
  ASSERT_TRUE(c) << c.error().text();
  auto v = c->get(prefix + "k");
  ASSERT_TRUE(v) << v.error().text();
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->value, "v");
  auto listed = c->list(prefix);
  ASSERT_TRUE(listed) << listed.error().text();
  EXPECT_EQ(listed->size(), 1u);
  auto kept = c->keep_alive(*lease);
  EXPECT_TRUE(kept) << kept.error().text();
  // A write may have reached the hung member: it is not sent again elsewhere (it could apply
  // twice), so it fails naming the member, and nothing changed.
  auto w = c->create_if_absent(prefix + "new", "x");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().text().find(u), std::string::npos) << w.error().text();
  auto still = client->get(prefix + "new");
  ASSERT_TRUE(still) << still.error().text();
  EXPECT_FALSE(still->has_value());
  (void)client->revoke_lease(*lease);
  ASSERT_TRUE(client->remove_prefix(prefix));
}

TEST(EtcdUnreachable, DeadEtcdIsAClearErrorNamingTheEndpoint) {
  BoundPort dead1, dead2;
  ASSERT_NE(dead1.port, 0);
  std::string u1 = "http://127.0.0.1:" + std::to_string(dead1.port);
  std::string u2 = "http://127.0.0.1:" + std::to_string(dead2.port);
  auto c = EtcdClient::create({u1, u2});
  ASSERT_TRUE(c);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->put("k", "v");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  std::string text = r.error().text();
  EXPECT_NE(text.find(u1), std::string::npos) << text;
  EXPECT_NE(text.find(u2), std::string::npos) << text;
  EXPECT_NE(text.find(std::strerror(ECONNREFUSED)), std::string::npos) << text;
  EXPECT_NE(text.find("/v3/kv/put"), std::string::npos) << text;
  EXPECT_LT(took, 2s);
}

TEST(EtcdUnreachable, HungEtcdTimesOutInsteadOfHanging) {
  // Listening but never accepting nor answering: the kernel completes the connection from the
  // backlog, so only the read timeout can end the call.
  BoundPort hung(true);
  ASSERT_NE(hung.port, 0);
  std::string u = "http://127.0.0.1:" + std::to_string(hung.port);
  auto c = EtcdClient::create({u}, 1s);
  ASSERT_TRUE(c);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->get("k");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find(u), std::string::npos) << r.error().text();
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);
}

} // namespace
