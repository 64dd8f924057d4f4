// ClusterMember::join against an etcd that refuses (a clear error at once) and one that accepts
// connections and never answers (retried for a while, then a clear error naming it): the daemon's
// start must neither hang nor give up on a merely slow etcd at its first timeout.

#include <cerrno>
#include <chrono>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "daemon/cluster_member.hpp"
#include "tests/support/loopback_port.hpp"

namespace {

using namespace std::chrono_literals;
using bulkhead::cluster::EtcdClient;
using bulkhead::daemon::ClusterMember;

using bh_test::LoopbackPort;

ClusterMember member_of(const std::string &url) {
  auto client = EtcdClient::create({url}, 500ms);
  EXPECT_TRUE(client) << client.error().text();
  return ClusterMember(
      std::move(*client), "host-x", "198.18.0.1:8443", 3, [] { return std::map<std::string, std::string>(); },
      [] { return std::string("online"); });
}

TEST(ClusterJoin, RefusingEtcdFailsAtOnce) {
  LoopbackPort refusing(false);
  ASSERT_NE(refusing.port, 0);
  auto m = member_of(refusing.url());
  auto t0 = std::chrono::steady_clock::now();
  auto r = m.join();
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find(refusing.url()), std::string::npos) << r.error().text();
  EXPECT_LT(took, 3s) << r.error().text();
}

TEST(ClusterJoin, SilentEtcdIsRetriedThenAClearError) {
  LoopbackPort silent(true);
  ASSERT_NE(silent.port, 0);
  auto m = member_of(silent.url());
  auto t0 = std::chrono::steady_clock::now();
  auto r = m.join();
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT) << r.error().text();
  EXPECT_NE(r.error().text().find("joining the cluster at " + silent.url()), std::string::npos)
      << r.error().text();
  // Several attempts over the patience window (10 s), not one timeout, and not forever.
  EXPECT_GE(took, 9s);
  EXPECT_LT(took, 20s);
}

} // namespace
