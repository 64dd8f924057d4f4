#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "oci/state.hpp"

namespace bulkhead::oci {
namespace {

State sample_state() {
  State s;
  s.id = "box";
  s.status = "running";
  s.pid = 4242;
  s.bundle = "/srv/bundles/box";
  s.rootfs = "/srv/bundles/box/rootfs";
  s.created = "2024-05-01T10:20:30.123456789Z";
  s.owner = "";
  return s;
}

std::vector<std::string> keys_of(const std::string &text) {
  const auto j = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto &[k, v] : j.items())
    keys.push_back(k);
  return keys;
}

TEST(OciState, PrettyMatchesRuncLayout) {
  State s = sample_state();
  s.annotations = {{"org.example", "1"}, {"a", "b"}};
  EXPECT_EQ(state_to_json(s, true), R"({
  "ociVersion": "1.2.0",
  "id": "box",
  "pid": 4242,
  "status": "running",
  "bundle": "/srv/bundles/box",
  "rootfs": "/srv/bundles/box/rootfs",
  "created": "2024-05-01T10:20:30.123456789Z",
  "annotations": {
    "a": "b",
    "org.example": "1"
  },
  "owner": ""
})");
}

TEST(OciState, CompactIsOneLine) {
  EXPECT_EQ(state_to_json(sample_state(), false),
            R"({"ociVersion":"1.2.0","id":"box","pid":4242,"status":"running","bundle":"/srv/bundles/box",)"
            R"("rootfs":"/srv/bundles/box/rootfs","created":"2024-05-01T10:20:30.123456789Z","owner":""})");
}

TEST(OciState, KeyOrder) {
  State s = sample_state();
  s.annotations = {{"k", "v"}};
  EXPECT_EQ(keys_of(state_to_json(s, false)),
            (std::vector<std::string>{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                                      "annotations", "owner"}));
}

TEST(OciState, StoppedPrintsPidZeroAndOmitsEmptyAnnotations) {
  State s = sample_state();
  s.status = "stopped";
  s.pid = 0;
  EXPECT_EQ(keys_of(state_to_json(s, true)),
            (std::vector<std::string>{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                                      "owner"}));
}

TEST(OciState, DefaultVersionAndEscaping) {
  State s;
  s.id = "x";
  s.status = "created";
  s.pid = 1;
  s.bundle = "/path/with \"quote\"";
  s.owner = "1000";
  auto j = nlohmann::json::parse(state_to_json(s, false));
  EXPECT_EQ(j["ociVersion"], kSpecVersion);
  EXPECT_EQ(j["bundle"], "/path/with \"quote\"");
  EXPECT_EQ(j["owner"], "1000");
}

TEST(OciState, InvalidUtf8DoesNotThrow) {
  State s = sample_state();
  s.bundle = "/srv/\xff\xfe";
  std::string out;
  EXPECT_NO_THROW(out = state_to_json(s, false));
  EXPECT_NE(out.find("\"bundle\":\"/srv/"), std::string::npos);
}

} // namespace
} // namespace bulkhead::oci
