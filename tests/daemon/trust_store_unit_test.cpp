// The trust store's tokens by purpose and the cluster key (daemon/trust_store.hpp), and the cluster
// trust's MAC and key id (daemon/cluster_trust.hpp): a token is redeemed only for its own purpose
// and host, a refusal leaves it pending, and what is kept survives a reload.
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "daemon/cluster_trust.hpp"
#include "daemon/events.hpp"
#include "daemon/trust_store.hpp"

namespace bulkhead::daemon {
namespace {

class TrustStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bh-trust-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/trust.json"; }
  std::string dir_;
};

TEST_F(TrustStoreTest, ClusterTokenOnlyForJoiningOnlyByItsHostAndKeptAcrossALoad) {
  TrustStore s(path());
  ASSERT_TRUE(s.load());
  const int64_t later = now_unix_ms() + 60000;
  auto secret = s.add_token("host-a", later, TokenKind::cluster);
  ASSERT_TRUE(secret) << secret.error().text();
  const std::string fp = "sha256:" + std::string(64, 'a');

  // Not for pairing, not for another host, not before the key exists: each leaves it pending.
  auto paired = s.redeem(*secret, fp);
  ASSERT_FALSE(paired);
  EXPECT_EQ(paired.error().code, EPERM);
  EXPECT_NE(paired.error().message.find("cluster join"), std::string::npos) << paired.error().message;
  auto other = s.redeem_cluster(*secret, "host-c");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("made for host \"host-a\", not \"host-c\""), std::string::npos);
  auto keyless = s.redeem_cluster(*secret, "host-a");
  ASSERT_FALSE(keyless);
  EXPECT_EQ(keyless.error().code, ENOKEY);
  EXPECT_FALSE(s.trusted(fp)) << "a refused token trusts nobody";

  const std::string key(64, 'f');
  ASSERT_TRUE(s.set_cluster_key(key));
  // Kept on disk: a reload has the key and the pending token with its purpose.
  TrustStore again(path());
  ASSERT_TRUE(again.load());
  EXPECT_EQ(again.cluster_key(), key);
  EXPECT_EQ(again.list_trust()[0]["kind"], "cluster") << again.list_trust().dump();
  ASSERT_TRUE(again.redeem_cluster(*secret, "host-a"));
  EXPECT_FALSE(again.trusted(fp)) << "a join adds no paired peer: the key vouches for it";
  auto twice = again.redeem_cluster(*secret, "host-a");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("used already"), std::string::npos);
  EXPECT_TRUE(again.list_trust().empty()) << again.list_trust().dump();
}

TEST_F(TrustStoreTest, PairingTokenIsRefusedToAJoinAndStillPairs) {
  TrustStore s(path());
  ASSERT_TRUE(s.set_cluster_key(std::string(64, '1')));
  auto secret = s.add_token("host-b", now_unix_ms() + 60000);
  ASSERT_TRUE(secret);
  auto joined = s.redeem_cluster(*secret, "host-b");
  ASSERT_FALSE(joined);
  EXPECT_NE(joined.error().message.find("remote add"), std::string::npos) << joined.error().message;
  const std::string fp = "sha256:" + std::string(64, 'b');
  auto paired = s.redeem(*secret, fp);
  ASSERT_TRUE(paired) << paired.error().text();
  EXPECT_EQ(s.trusted(fp)->name, "host-b");
}

TEST(ClusterTrustMac, BindsEveryFieldAndTheKey) {
  const std::string k1(64, '1'), k2(64, '2');
  const std::string base = trust_entry_mac(k1, "ab", "198.18.0.1:8443", "sha256:x");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, trust_entry_mac(k1, "ab", "198.18.0.1:8443", "sha256:x"));
  EXPECT_NE(base, trust_entry_mac(k2, "ab", "198.18.0.1:8443", "sha256:x"));
  EXPECT_NE(base, trust_entry_mac(k1, "ac", "198.18.0.1:8443", "sha256:x"));
  EXPECT_NE(base, trust_entry_mac(k1, "ab", "198.18.0.2:8443", "sha256:x"));
  EXPECT_NE(base, trust_entry_mac(k1, "ab", "198.18.0.1:8443", "sha256:y"));
  // Fields are length-prefixed: moving a boundary changes the MAC.
  EXPECT_NE(trust_entry_mac(k1, "a", "b\nc", "d"), trust_entry_mac(k1, "a\nb", "c", "d"));
  // The key's id names the key without revealing it.
  EXPECT_EQ(cluster_key_id(k1), cluster_key_id(k1));
  EXPECT_NE(cluster_key_id(k1), cluster_key_id(k2));
  EXPECT_EQ(cluster_key_id(k1).rfind("bhk1:", 0), 0u);
  EXPECT_EQ(cluster_key_id(k1).size(), 5u + 32u);
  EXPECT_EQ(cluster_key_id(k1).find(k1.substr(0, 8)), std::string::npos);
}

} // namespace
} // namespace bulkhead::daemon
