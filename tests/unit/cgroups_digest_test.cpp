#include <gtest/gtest.h>
#include <string>

#include "cgroups/digest.hpp"

namespace {

template <size_t N> std::string hex(const std::array<uint8_t, N> &d) {
  std::string s;
  for (uint8_t b : d) {
    static const char digits[] = "0123456789abcdef";
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

} // namespace

// FIPS 180-4 example vectors, plus lengths around the 56-byte padding boundary.
TEST(Digest, Sha1KnownAnswers) {
  using bulkhead::cgroups::sha1;
  EXPECT_EQ(hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex(sha1(std::string(1000, 'a'))), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

TEST(Digest, Sha256KnownAnswers) {
  using bulkhead::cgroups::sha256;
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(sha256(std::string(1000, 'a'))),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}
