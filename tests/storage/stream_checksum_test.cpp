// The checksum of image sets between hosts (storage/stream_checksum.hpp): the published XXH3-128
// and SHA-256 values (as xxh128sum and sha256sum print them), the same digest however the stream
// is cut into updates, and the choice between two hosts of different versions.
#include <gtest/gtest.h>

#include <random>

#include "storage/stream_checksum.hpp"

namespace bulkhead::storage::test {
namespace {

std::string digest_of(std::string_view algorithm, std::string_view data) {
  auto sum = StreamChecksum::make(algorithm);
  EXPECT_TRUE(sum) << (sum ? "" : sum.error().text());
  sum->update(data);
  return sum->hex_digest();
}

TEST(StreamChecksum, KnownValues) {
  EXPECT_EQ(digest_of("xxh3-128", ""), "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(digest_of("xxh3-128", "abc"), "06b05ab6733a618578af5f94892f3950");
  EXPECT_EQ(digest_of("sha256", "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(StreamChecksum, TheDigestDoesNotDependOnHowTheStreamIsCut) {
  std::string data(3 << 20, '\0');
  std::mt19937 rng(7);
  for (auto &c : data)
    c = static_cast<char>(rng());
  for (std::string_view algorithm : {kChecksumXxh3, kChecksumSha256}) {
    std::string whole = digest_of(algorithm, data);
    auto sum = StreamChecksum::make(algorithm);
    ASSERT_TRUE(sum);
    for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 65521 + 1)
      sum->update(std::string_view(data).substr(at, step));
    EXPECT_EQ(sum->hex_digest(), whole) << algorithm;
    data[12345] ^= 1;
    EXPECT_NE(digest_of(algorithm, data), whole) << algorithm << " missed a flipped bit";
    data[12345] ^= 1;
  }
}

TEST(StreamChecksum, AnUnknownAlgorithmIsNamed) {
  auto sum = StreamChecksum::make("md5");
  ASSERT_FALSE(sum);
  EXPECT_EQ(sum.error().code, EPROTONOSUPPORT);
  EXPECT_NE(sum.error().text().find("\"md5\""), std::string::npos) << sum.error().text();
}

TEST(StreamChecksum, TheSenderPicksTheBestBothKnow) {
  EXPECT_EQ(stream_checksums().front(), "xxh3-128");
  EXPECT_EQ(pick_stream_checksum({"sha256", "xxh3-128"}), "xxh3-128");
  EXPECT_EQ(pick_stream_checksum({"sha256"}), "sha256");
  // A peer of an older version announces nothing: it knows SHA-256 only.
  EXPECT_EQ(pick_stream_checksum({}), "sha256");
  EXPECT_EQ(pick_stream_checksum({"blake9"}), "sha256");
}

} // namespace
} // namespace bulkhead::storage::test
