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
