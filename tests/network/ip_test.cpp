// Pure parsing: addresses, prefixes, rates.
#include <gtest/gtest.h>

#include "network/network.hpp"

using namespace bulkhead::net;

TEST(Ip, ParsesAndPrintsBothFamilies) {
  auto c = Cidr::parse("198.18.77.1/24");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->network().str(), "198.18.77.0");
  EXPECT_EQ(c->last().str(), "198.18.77.255");
  EXPECT_TRUE(c->contains(*IpAddress::parse("198.18.77.200")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("198.18.78.1")));
  auto v6 = Cidr::parse("fd42:77::1/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->network().str(), "fd42:77::");
  EXPECT_EQ(v6->str(), "fd42:77::1/64");
  EXPECT_EQ(IpAddress::parse("fd00::ff")->plus(1).str(), "fd00::100");
  EXPECT_TRUE(Cidr::parse("198.18.0.0/15")->overlaps(*Cidr::parse("198.19.4.0/24")));
  EXPECT_FALSE(Cidr::parse("198.18.0.0/24")->overlaps(*Cidr::parse("198.18.1.0/24")));
}

TEST(Ip, RefusesBadInput) {
  EXPECT_FALSE(Cidr::parse("198.18.0.1/33"));
  EXPECT_FALSE(Cidr::parse("198.18.0/24"));
  EXPECT_FALSE(Cidr::parse("fd00::1/129"));
  EXPECT_FALSE(Cidr::parse("fd00::1/6x"));
}

TEST(Rate, ParsesTcUnits) {
  EXPECT_EQ(Rate::parse("10mbit")->bits_per_second, 10000000u);
  EXPECT_EQ(Rate::parse("500kbit")->bits_per_second, 500000u);
  EXPECT_EQ(Rate::parse("1gbit")->bits_per_second, 1000000000u);
  EXPECT_EQ(Rate::parse("1mbps")->bits_per_second, 8000000u);
  EXPECT_EQ(Rate::parse("2mibit")->bits_per_second, 2097152u);
  EXPECT_EQ(Rate::parse("10mbit")->str(), "10mbit");
  auto bad = Rate::parse("10 furlongs");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().text().find("10 furlongs"), std::string::npos);
  EXPECT_FALSE(Rate::parse("-5mbit"));
  EXPECT_FALSE(Rate::parse("mbit"));
}
