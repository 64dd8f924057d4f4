#include <gtest/gtest.h>

#include "cli/ctl_values.hpp"

using namespace bulkhead::ctl;

TEST(CtlValues, Sizes) {
  EXPECT_EQ(*parse_size("256M"), 268435456u);
  EXPECT_EQ(*parse_size("256MiB"), 268435456u);
  EXPECT_EQ(*parse_size("1.5g"), 1610612736u);
  EXPECT_EQ(*parse_size("1048576"), 1048576u);
  EXPECT_EQ(*parse_size("4k"), 4096u);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("12Q"));
  EXPECT_FALSE(parse_size("M"));
  EXPECT_FALSE(parse_size("1.2.3M"));
  EXPECT_FALSE(parse_size("-5M"));
  EXPECT_FALSE(parse_size("0"));
  EXPECT_EQ(parse_size("12Q").error().text(), "\"12Q\": not a size (examples: 256M, 1.5G, 1048576)");
}

// One parser for `protect --interval` (plain = seconds, ms allowed) and token lives (whole seconds).
TEST(CtlValues, Durations) {
  EXPECT_EQ(*parse_duration_ms("1500ms", 1000), 1500);
  EXPECT_EQ(*parse_duration_ms("2s", 1000), 2000);
  EXPECT_EQ(*parse_duration_ms("2", 1000), 2000);
  EXPECT_EQ(*parse_duration_ms("10m", 1000), 600000);
  EXPECT_EQ(*parse_duration_ms("1d", 1000), 86400000);
  for (const char *bad : {"", "0", "-1s", "2x", "s", "1.5s"})
    EXPECT_FALSE(parse_duration_ms(bad, 1000)) << bad;
  EXPECT_EQ(*parse_duration_s("2h"), 7200);
  EXPECT_EQ(*parse_duration_s("600"), 600);
  EXPECT_FALSE(parse_duration_s("1500ms"));
  EXPECT_EQ(*parse_duration_s("3000ms"), 3);
}

TEST(CtlValues, PortSpecs) {
  auto p = parse_port_spec("8080:80", true);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host_port, 8080);
  EXPECT_EQ(p->container_port, 80);
  EXPECT_EQ(p->proto, "tcp");
  p = parse_port_spec("65535:1/udp", true);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host_port, 65535);
  EXPECT_EQ(p->container_port, 1);
  EXPECT_EQ(p->proto, "udp");
  p = parse_port_spec("5353/udp", false);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host_port, 5353);
  EXPECT_EQ(p->proto, "udp");
  for (const char *bad : {"0:80", "65536:80", "80:0", "http:80", "+80:80", "080000:80", ":80",
                          "80:", "80:80/sctp", "80:80/", "8080", "80:80:80", " 80:80", "80:80/TCP"})
    EXPECT_FALSE(parse_port_spec(bad, true)) << bad;
  for (const char *bad : {"0", "8080:80", "8080/icmp", "", "99999"})
    EXPECT_FALSE(parse_port_spec(bad, false)) << bad;
  EXPECT_EQ(parse_port_spec("65536:80", true).error().text(),
            "\"65536:80\": host port '65536' is not a port (a number from 1 to 65535)");
  EXPECT_EQ(parse_port_spec("80:80/sctp", true).error().text(),
            "\"80:80/sctp\": protocol 'sctp': tcp or udp");
}
