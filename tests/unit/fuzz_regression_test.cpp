// Inputs that crashed, hung or tripped a sanitizer in the libFuzzer targets (tests/fuzz), kept as
// units once fixed. Each names the target that reported it.
#include <string>

#include <gtest/gtest.h>

#include "runtime/state_store.hpp"

using namespace bulkhead;

namespace {

std::string record_with_pid(const std::string &pid, const std::string &start_time = "1") {
  return R"({"id":"a","bundle":"/b","rootfs":"/b/rootfs","created":"c","pid":)" + pid +
         R"(,"pid_start_time":)" + start_time + R"(,"creating":false})";
}

// fuzz_state (UBSan, on a hand-written seed: 1.7M generated inputs had not reached it): a float
// pid out of int's range went through nlohmann's plain cast ("1e+30 is outside the range of
// representable values of type 'int'").
TEST(FuzzRegression, StateRecordWithFloatPidIsCorruptState) {
  for (const std::string pid : {"1e30", "-1e30", "1.5", "2147483648", "-2147483649"}) {
    auto r = runtime::parse_record(record_with_pid(pid), "/run/x/state.json");
    ASSERT_FALSE(r) << pid;
    EXPECT_EQ(r.error().text(), "/run/x/state.json: corrupt state: pid must be an integer of 32 bits, not " +
                                    nlohmann::json::parse(pid).dump())
        << pid;
  }
  for (const std::string start : {"-1", "1e20", "0.5"}) {
    auto r = runtime::parse_record(record_with_pid("1", start), "s");
    ASSERT_FALSE(r) << start;
    EXPECT_NE(r.error().text().find("pid_start_time must be an integer of 64 bits"), std::string::npos)
        << r.error().text();
  }
}

TEST(FuzzRegression, StateRecordRoundTrip) {
  auto r = runtime::parse_record(record_with_pid("2147483647", "18446744073709551615"), "s");
  ASSERT_TRUE(r) << r.error().text();
  EXPECT_EQ(r->init.pid, 2147483647);
  EXPECT_EQ(r->init.start_time, 18446744073709551615ull);
  auto again = runtime::parse_record(runtime::record_json(*r), "s");
  ASSERT_TRUE(again) << again.error().text();
  EXPECT_EQ(runtime::record_json(*again), runtime::record_json(*r));
}

} // namespace
