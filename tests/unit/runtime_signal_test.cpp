#include <csignal>
#include <gtest/gtest.h>

#include "bulkhead/runtime.hpp"

using bulkhead::parse_signal;

TEST(ParseSignal, NamesAndNumbers) {
  EXPECT_EQ(*parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(*parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*parse_signal("term"), SIGTERM);
  EXPECT_EQ(*parse_signal("9"), 9);
  EXPECT_EQ(*parse_signal("0"), 0); // kill(2)'s existence check, as `runc kill ID 0`
  EXPECT_EQ(*parse_signal("SIGRTMIN+2"), SIGRTMIN + 2);
}

TEST(ParseSignal, Rejects) {
  EXPECT_FALSE(parse_signal("NOPE"));
  EXPECT_FALSE(parse_signal("99"));
  EXPECT_FALSE(parse_signal(""));
}
