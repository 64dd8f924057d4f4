// Bandwidth caps measured with real TCP transfers between two namespaces over a veth: the egress
// TBF and the ingress IFB redirect each land within 10% of the cap, a replace changes the rate
// live, and clearing leaves no qdisc, filter or IFB behind.
#include <cstdio>

#include "helpers.hpp"

using namespace bulkhead::net;
using namespace bulkhead::net::test;

namespace {

class Caps : public RootOnly {
protected:
  void SetUp() override {
    RootOnly::SetUp();
    if (IsSkipped())
      return;
    host = std::make_unique<Space>(Space::make());
    ct = std::make_unique<Space>(Space::make());
    auto v = create_veth(host->nl, "bh-cap", "eth0", {}, &ct->ns);
    ASSERT_TRUE(v) << v.error().text();
    v->release(); // the netns go away with the test, and the veth with them
    ASSERT_OK(set_up(host->nl, "bh-cap", true));
    ASSERT_OK(set_up(ct->nl, "eth0", true));
    ASSERT_OK(add_address(host->nl, "bh-cap", cidr("198.18.30.1/24")));
    ASSERT_OK(add_address(ct->nl, "eth0", cidr("198.18.30.2/24")));
  }

  // TCP payload rate against the cap: payload is ~95.6% of what the TBF counts (1448 of 1514
  // bytes per full frame), so the goodput sits a few percent under the cap.
  void expect_near(double bytes_per_s, Rate cap, const char *what) {
    double want = static_cast<double>(cap.bytes_per_second());
    double wire = bytes_per_s * 1514.0 / 1448.0;
    std::printf(
        "  %s: cap %s = %.0f B/s, measured goodput %.0f B/s (%.1f%%), on the wire ~%.0f B/s (%.1f%%)\n", what,
        cap.str().c_str(), want, bytes_per_s, 100 * bytes_per_s / want, wire, 100 * wire / want);
    EXPECT_GT(bytes_per_s, want * 0.9) << what;
    EXPECT_LT(bytes_per_s, want * 1.1) << what;
  }

  std::unique_ptr<Space> host, ct;
};

} // namespace

TEST_F(Caps, EgressTbfHoldsTheRateAndChangesLive) {
  Rate r10 = *Rate::parse("10mbit"), r20 = *Rate::parse("20mbit");
  double free_rate = tcp_rate(host->ns, ct->ns, ip("198.18.30.2"), 1.0);
  std::printf("  uncapped veth: %.0f B/s\n", free_rate);

  ASSERT_OK(set_egress_limit(host->nl, "bh-cap", r10));
  EXPECT_EQ(egress_limit(host->nl, "bh-cap")->value().bits_per_second, r10.bits_per_second);
  expect_near(tcp_rate(host->ns, ct->ns, ip("198.18.30.2")), r10, "egress 10mbit");

  ASSERT_OK(set_egress_limit(host->nl, "bh-cap", r20)); // replace in place
  EXPECT_EQ(egress_limit(host->nl, "bh-cap")->value().bits_per_second, r20.bits_per_second);
  expect_near(tcp_rate(host->ns, ct->ns, ip("198.18.30.2")), r20, "egress 20mbit (replaced live)");

  ASSERT_OK(clear_egress_limit(host->nl, "bh-cap"));
  EXPECT_FALSE(egress_limit(host->nl, "bh-cap")->has_value());
  ASSERT_OK(clear_egress_limit(host->nl, "bh-cap")); // idempotent
  EXPECT_GT(tcp_rate(host->ns, ct->ns, ip("198.18.30.2"), 1.0),
            4 * static_cast<double>(r20.bytes_per_second()));
}

TEST_F(Caps, IngressIfbRedirectHoldsTheRateAndChangesLive) {
  Rate r10 = *Rate::parse("10mbit"), r5 = *Rate::parse("5mbit");
  ASSERT_OK(set_ingress_limit(host->nl, "bh-cap", r10));
  auto link = get_link(host->nl, "bh-cap");
  ASSERT_TRUE(link);
  std::string ifb = ifb_name(link->index);
  EXPECT_TRUE(*find_link(host->nl, ifb));
  EXPECT_EQ(ingress_limit(host->nl, "bh-cap")->value().bits_per_second, r10.bits_per_second);
  // Traffic *into* bh-cap: from the container side to the host.
  expect_near(tcp_rate(ct->ns, host->ns, ip("198.18.30.1")), r10, "ingress 10mbit");

  ASSERT_OK(set_ingress_limit(host->nl, "bh-cap", r5)); // only the IFB's TBF is replaced
  EXPECT_EQ(ingress_limit(host->nl, "bh-cap")->value().bits_per_second, r5.bits_per_second);
  expect_near(tcp_rate(ct->ns, host->ns, ip("198.18.30.1")), r5, "ingress 5mbit (replaced live)");

  ASSERT_OK(clear_ingress_limit(host->nl, "bh-cap"));
  EXPECT_FALSE(*find_link(host->nl, ifb));
  EXPECT_FALSE(ingress_limit(host->nl, "bh-cap")->has_value());
  ASSERT_OK(clear_ingress_limit(host->nl, "bh-cap"));
  EXPECT_EQ(host->link_names(), (std::vector<std::string>{"lo", "bh-cap"}));
}

TEST_F(Caps, BadRateAndMissingDeviceAreClearErrors) {
  auto bad = Rate::parse("fast");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().text().find("'fast'"), std::string::npos);
  auto missing = set_egress_limit(host->nl, "bh-none", *Rate::parse("1mbit"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().text().find("bh-none"), std::string::npos);
  auto missing_in = set_ingress_limit(host->nl, "bh-none", *Rate::parse("1mbit"));
  ASSERT_FALSE(missing_in);
  EXPECT_EQ(host->link_names(), (std::vector<std::string>{"lo", "bh-cap"}));
}
