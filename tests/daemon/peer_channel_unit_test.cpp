// The host-to-host channel (migration/peer_tls.hpp) over loopback: both ends negotiate the suite
// this host measured fastest (migration/tls_suites.hpp), and a message with a payload crosses it.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/peer_server.hpp"
#include "migration/peer_tls.hpp"
#include "migration/tls_suites.hpp"

namespace bulkhead::migration {
namespace {

TEST(TlsSuites, AllThreeSuitesOnceTheMeasuredFasterFirst) {
  const std::string &order = tls13_ciphersuites();
  for (const char *suite :
       {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}) {
    auto at = order.find(suite);
    ASSERT_NE(at, std::string::npos) << order;
    EXPECT_EQ(order.find(suite, at + 1), std::string::npos) << order;
  }
  EXPECT_TRUE(order.rfind("TLS_CHACHA20_POLY1305_SHA256:", 0) == 0 ||
              order.rfind("TLS_AES_256_GCM_SHA384:", 0) == 0)
      << order;
  EXPECT_EQ(&order, &tls13_ciphersuites()) << "measured once per process";
}

TEST(PeerChannel, BothEndsUseTheFirstSuiteAndCarryAPayload) {
  char tmpl[] = "/tmp/bulkhead-peer-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto a = PeerIdentity::load_or_create(dir + "/a", "host-a");
  auto b = PeerIdentity::load_or_create(dir + "/b", "host-b");
  ASSERT_TRUE(a && b);
  // A port of our own: another test process may hold the first one tried.
  UniqueFd listener;
  std::string address;
  for (int port = 20000 + ::getpid() % 20000, tries = 0; !listener && tries < 50; ++port, ++tries) {
    address = "127.0.0.1:" + std::to_string(port);
    if (auto l = listen_tcp(address))
      listener = std::move(*l);
  }
  ASSERT_TRUE(listener) << "no free loopback port";
  std::string server_cipher, server_got;
  std::thread server([&] {
    UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto conn = accept_peer(std::move(fd), "client", *b, 10);
    if (!conn)
      return;
    server_cipher = conn->cipher();
    if (auto m = conn->receive(); m) {
      server_got = m->payload;
      (void)conn->send({{"ok", true}, {"size", m->payload.size()}});
    }
  });
  auto conn = connect_peer(address, *a, b->fingerprint(), 10);
  ASSERT_TRUE(conn) << conn.error().text();
  std::string payload(1 << 20, 'x');
  auto reply = conn->request({{"op", "echo"}}, payload);
  server.join();
  ASSERT_TRUE(reply) << reply.error().text();
  EXPECT_EQ(reply->header.value("size", 0u), payload.size());
  EXPECT_EQ(server_got, payload);
  const std::string &order = tls13_ciphersuites();
  EXPECT_EQ(conn->cipher(), order.substr(0, order.find(':')));
  EXPECT_EQ(server_cipher, conn->cipher());
  std::filesystem::remove_all(dir);
}

// Two hosts of different versions agree on the stream checksum: the sender takes the best the
// receiver lists, the receiver the one the sender names; an older peer on either side means SHA-256.
TEST(PeerChannel, StreamChecksumsOfTwoVersions) {
  using nlohmann::json;
  auto algorithm = [](const Result<storage::StreamChecksum> &c) {
    return c ? c->algorithm() : c.error().text();
  };
  EXPECT_EQ(
      algorithm(daemon::checksum_for_receiver(json{{"ok", true}, {"checksums", {"xxh3-128", "sha256"}}})),
      "xxh3-128");
  EXPECT_EQ(algorithm(daemon::checksum_for_receiver(json{{"ok", true}})), "sha256");
  EXPECT_EQ(algorithm(daemon::checksum_for_receiver(json{{"checksums", "xxh3-128"}})), "sha256");
  EXPECT_EQ(
      algorithm(daemon::checksum_named_by_sender(json{{"op", "replica.begin"}, {"checksum", "xxh3-128"}})),
      "xxh3-128");
  EXPECT_EQ(algorithm(daemon::checksum_named_by_sender(json{{"op", "migrate.receive"}})), "sha256");
  auto odd = daemon::checksum_named_by_sender(json{{"checksum", 5}});
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, EPROTO);
  auto unknown = daemon::checksum_named_by_sender(json{{"checksum", "md5"}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, EPROTONOSUPPORT);
}

} // namespace
} // namespace bulkhead::migration
