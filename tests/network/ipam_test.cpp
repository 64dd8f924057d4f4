// IPAM on real files: lowest-free allocation skipping the network, broadcast and gateway, explicit
// claims, release, persistence across reopen (a restart), refusal of another subnet's record, and
// no double allocation when two allocators (two "daemons") race on one record.
#include <csignal>
#include <cstdlib>
#include <set>
#include <sys/wait.h>
#include <thread>

#include "helpers.hpp"

using namespace bulkhead::net;
using namespace bulkhead::net::test;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = "/tmp/bulkhead-ipam-test-XXXXXX";
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { (void)!std::system(("rm -rf '" + path + "'").c_str()); }
};

} // namespace

TEST(Ipam, AllocatesLowestFreePersistsAndReleases) {
  TempDir dir;
  std::string rec = dir.path + "/lan0.v4.json";
  {
    auto pool = Ipam::open(rec, cidr("198.18.77.1/24"), {ip("198.18.77.1")});
    ASSERT_TRUE(pool) << pool.error().text();
    EXPECT_EQ(pool->allocate("ct/a")->str(), "198.18.77.2");
    EXPECT_EQ(pool->allocate("ct/b")->str(), "198.18.77.3");
    ASSERT_OK(pool->claim(ip("198.18.77.10"), "ct/c"));
    ASSERT_OK(pool->claim(ip("198.18.77.10"), "ct/c")); // same owner again: no-op
    auto taken = pool->claim(ip("198.18.77.10"), "ct/d");
    ASSERT_FALSE(taken);
    EXPECT_NE(taken.error().text().find("198.18.77.10 is already taken"), std::string::npos);
    auto outside = pool->claim(ip("198.18.78.4"), "ct/d");
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().text().find("outside the network 198.18.77.0/24"), std::string::npos);
    EXPECT_FALSE(pool->claim(ip("198.18.77.1"), "ct/d"));   // the gateway
    EXPECT_FALSE(pool->claim(ip("198.18.77.255"), "ct/d")); // broadcast
    ASSERT_OK(pool->release(ip("198.18.77.2")));
  }
  // "Restart": a new allocator on the same record sees everything that was handed out.
  auto pool = Ipam::open(rec, cidr("198.18.77.1/24"), {ip("198.18.77.1")});
  ASSERT_TRUE(pool) << pool.error().text();
  EXPECT_EQ(pool->list()->size(), 2u);
  EXPECT_EQ(pool->allocate("ct/e")->str(), "198.18.77.2"); // the released one comes back
  EXPECT_EQ(pool->allocate("ct/f")->str(), "198.18.77.4");
  ASSERT_OK(pool->release_owner("ct/c"));
  EXPECT_EQ(pool->allocate("ct/g")->str(), "198.18.77.5");
  EXPECT_EQ(pool->list()->size(), 4u);

  auto other = Ipam::open(rec, cidr("198.18.80.1/24"));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().text().find("is for subnet 198.18.77.0/24"), std::string::npos);
}

TEST(Ipam, Ipv6AndExhaustion) {
  TempDir dir;
  auto v6 = Ipam::open(dir.path + "/v6.json", cidr("fd42:77::1/64"), {ip("fd42:77::1")});
  ASSERT_TRUE(v6) << v6.error().text();
  EXPECT_EQ(v6->allocate("a")->str(), "fd42:77::2");
  ASSERT_OK(v6->claim(ip("fd42:77::3"), "b"));
  EXPECT_EQ(v6->allocate("c")->str(), "fd42:77::4");

  auto tiny = Ipam::open(dir.path + "/tiny.json", cidr("198.18.90.0/30"));
  ASSERT_TRUE(tiny);
  EXPECT_EQ(tiny->allocate("a")->str(), "198.18.90.1");
  EXPECT_EQ(tiny->allocate("b")->str(), "198.18.90.2");
  auto full = tiny->allocate("c");
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().text().find("no free address left in 198.18.90.0/30"), std::string::npos);
}

TEST(Ipam, TwoAllocatorsNeverHandOutTheSameAddress) {
  TempDir dir;
  std::string rec = dir.path + "/race.json";
  std::vector<std::string> got[2];
  std::thread t[2];
  for (int i = 0; i < 2; i++)
    t[i] = std::thread([&, i] {
      auto pool = Ipam::open(rec, cidr("198.18.100.0/24"));
      for (int k = 0; k < 50 && pool; k++) {
        auto a = pool->allocate("owner" + std::to_string(i));
        if (a)
          got[i].push_back(a->str());
      }
    });
  for (auto &th : t)
    th.join();
  std::set<std::string> all(got[0].begin(), got[0].end());
  all.insert(got[1].begin(), got[1].end());
  EXPECT_EQ(got[0].size() + got[1].size(), 100u);
  EXPECT_EQ(all.size(), 100u) << "an address was handed out twice";
  auto pool = Ipam::open(rec, cidr("198.18.100.0/24"));
  EXPECT_EQ(pool->list()->size(), 100u);
  // No temp file is left beside the record.
  EXPECT_NE(::access((dir.path + "/.race.json.tmp").c_str(), F_OK), 0);
}

TEST(Ipam, ARecordSurvivesAnAllocatorKilledMidWrite) {
  TempDir dir;
  std::string rec = dir.path + "/crash.json";
  for (int round = 0; round < 5; round++) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto pool = Ipam::open(rec, cidr("198.18.110.0/24"));
      for (int k = 0;; k++) {
        auto a = pool->allocate("killed");
        if (a && k % 2)
          (void)pool->release(*a);
      }
    }
    ::usleep(150000 + 20000 * round);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // Whatever instant it died at, the record parses and the next allocations are new addresses.
    auto pool = Ipam::open(rec, cidr("198.18.110.0/24"));
    ASSERT_TRUE(pool) << pool.error().text();
    auto before = pool->list();
    ASSERT_TRUE(before) << before.error().text();
    std::set<IpAddress> held;
    for (const auto &a : *before)
      held.insert(a.address);
    auto fresh = pool->allocate("survivor");
    ASSERT_TRUE(fresh) << fresh.error().text();
    EXPECT_FALSE(held.count(*fresh)) << fresh->str() << " handed out twice";
    ASSERT_OK(pool->release_owner("killed")); // what the daemon's reconciliation does at start
  }
}
