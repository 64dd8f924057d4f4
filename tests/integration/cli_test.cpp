// The command line outside the container lifecycle: --version, spec, list, --log/--log-format.
#include "harness.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

using namespace bh_test;

namespace {

class CliTest : public BulkheadTest {};

TEST_F(CliTest, Version) {
  auto r = run_command({runtime_path(), "--version"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << r;
  EXPECT_EQ(lines[0].rfind("bulkhead version", 0), 0u) << r;
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](auto &l) { return l.rfind("commit:", 0) == 0; }))
      << r;
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](auto &l) { return l.rfind("spec: 1.2", 0) == 0; }))
      << r;
}

TEST_F(CliTest, SpecWritesDefaultConfig) {
  std::string dir = make_temp_dir("specdir");
  auto r = bh({"spec", "--bundle", dir});
  ASSERT_EQ(r.exit_code, 0) << r;
  json c = json::parse(read_file(dir + "/config.json"), nullptr, false);
  ASSERT_TRUE(c.is_object()) << read_file(dir + "/config.json");
  EXPECT_EQ(c["process"]["args"], json::array({"sh"})) << c.dump(2);
  EXPECT_TRUE(c.contains("ociVersion")) << c.dump(2);
  EXPECT_EQ(c["root"]["path"], "rootfs") << c.dump(2);
  std::vector<std::string> ns;
  for (auto &n : c["linux"]["namespaces"])
    ns.push_back(n["type"]);
  for (const char *want : {"pid", "network", "ipc", "uts", "mount"})
    EXPECT_NE(std::find(ns.begin(), ns.end(), want), ns.end()) << want << " missing: " << c.dump(2);
  EXPECT_EQ(std::find(ns.begin(), ns.end(), "user"), ns.end()) << c.dump(2);
}

TEST_F(CliTest, SpecInCurrentDirectoryByDefault) {
  std::string dir = make_temp_dir("specdir");
  auto r = run_command({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" spec", dir, runtime_path()});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(path_exists(dir + "/config.json"));
}

TEST_F(CliTest, SpecTwiceFails) {
  std::string dir = make_temp_dir("specdir");
  auto first = bh({"spec", "--bundle", dir});
  ASSERT_EQ(first.exit_code, 0) << first;
  std::string before = read_file(dir + "/config.json");
  auto second = bh({"spec", "--bundle", dir});
  EXPECT_NE(second.exit_code, 0) << second;
  EXPECT_TRUE(contains(second.err, "exists")) << second;
  EXPECT_EQ(read_file(dir + "/config.json"), before) << "the existing config.json was modified";
}

TEST_F(CliTest, SpecRootless) {
  std::string dir = make_temp_dir("specdir");
  auto r = bh({"spec", "--rootless", "--bundle", dir});
  ASSERT_EQ(r.exit_code, 0) << r;
  json c = json::parse(read_file(dir + "/config.json"), nullptr, false);
  ASSERT_TRUE(c.is_object());
  bool has_user = false;
  for (auto &n : c["linux"]["namespaces"])
    has_user |= n["type"] == "user";
  EXPECT_TRUE(has_user) << c.dump(2);
  EXPECT_FALSE(c["linux"]["uidMappings"].empty()) << c.dump(2);
  EXPECT_FALSE(c["linux"]["gidMappings"].empty()) << c.dump(2);
}

TEST_F(CliTest, SpecOutputRunsAsIs) {
  // The generated config, with only the terminal turned off and a command set, starts a container.
  std::string bundle = make_bundle({"true"});
  std::filesystem::remove(bundle + "/config.json");
  auto s = bh({"spec", "--bundle", bundle});
  ASSERT_EQ(s.exit_code, 0) << s;
  json c = json::parse(read_file(bundle + "/config.json"));
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"sh", "-c", "echo from-spec; hostname"};
  write_config(bundle, c);
  auto r = bh({"run", "--bundle", bundle, "fromspec"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << r;
  EXPECT_EQ(lines[0], "from-spec") << r;
}

TEST_F(CliTest, ListShowsContainers) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t created = create(bundle, "lc");
  pid_t running = create_and_start(bundle, "lr");
  ASSERT_GT(created, 0);
  ASSERT_GT(running, 0);

  auto table = bh({"list"});
  ASSERT_EQ(table.exit_code, 0) << table;
  auto lines = split_lines(table.out);
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_EQ(split_words(lines[0]).at(0), "ID") << table;
  EXPECT_TRUE(contains(lines[0], "PID") && contains(lines[0], "STATUS") && contains(lines[0], "BUNDLE"))
      << table;
  std::map<std::string, std::vector<std::string>> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto w = split_words(lines[i]);
    if (!w.empty())
      rows[w[0]] = w;
  }
  ASSERT_TRUE(rows.count("lc") && rows.count("lr")) << table;
  EXPECT_EQ(rows["lc"].at(1), std::to_string(created)) << table;
  EXPECT_EQ(rows["lc"].at(2), "created") << table;
  EXPECT_EQ(rows["lr"].at(1), std::to_string(running)) << table;
  EXPECT_EQ(rows["lr"].at(2), "running") << table;
  EXPECT_EQ(rows["lr"].at(3), bundle) << table;

  auto quiet = bh({"list", "-q"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet;
  auto ids = split_lines(quiet.out);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"lc", "lr"})) << quiet;

  auto js = bh({"list", "--format", "json"});
  ASSERT_EQ(js.exit_code, 0) << js;
  json arr = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << js;
  ASSERT_EQ(arr.size(), 2u) << js;
  std::map<std::string, json> by_id;
  for (auto &s : arr)
    by_id[s.value("id", "")] = s;
  ASSERT_TRUE(by_id.count("lc") && by_id.count("lr")) << js;
  EXPECT_EQ(by_id["lc"].value("status", ""), "created") << js;
  EXPECT_EQ(by_id["lc"].value("pid", 0), created) << js;
  EXPECT_EQ(by_id["lr"].value("status", ""), "running") << js;
  EXPECT_EQ(by_id["lr"].value("pid", 0), running) << js;
  EXPECT_EQ(by_id["lr"].value("bundle", ""), bundle) << js;
  EXPECT_TRUE(by_id["lr"].contains("created")) << js;
}

TEST_F(CliTest, ListShowsStoppedContainers) {
  std::string bundle = make_bundle({"true"});
  ASSERT_GT(create_and_start(bundle, "ls"), 0);
  ASSERT_EQ(wait_for_status("ls", "stopped"), "stopped");
  auto js = bh({"list", "--format", "json"});
  ASSERT_EQ(js.exit_code, 0) << js;
  json arr = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(arr.is_array() && arr.size() == 1) << js;
  EXPECT_EQ(arr[0].value("status", ""), "stopped") << js;
}

TEST_F(CliTest, ListOfEmptyRoot) {
  auto quiet = bh({"list", "-q"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet;
  EXPECT_EQ(trim(quiet.out), "") << quiet;
  auto table = bh({"list"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(split_lines(table.out).size(), 1u) << "only the header: " << table;
}

TEST_F(CliTest, StateIsPrettyJson) {
  std::string bundle = make_bundle({"sleep", "100"});
  ASSERT_GT(create(bundle, "pretty"), 0);
  auto r = bh({"state", "pretty"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r;
  for (const char *key : {"ociVersion", "id", "status", "pid", "bundle", "rootfs", "created"})
    EXPECT_TRUE(j.contains(key)) << key << " missing: " << r;
  EXPECT_EQ(j.value("rootfs", ""), rootfs(bundle)) << r;
}

TEST_F(CliTest, LogFormatJsonOnError) {
  std::string bundle = make_bundle({"true"});
  ASSERT_TRUE(write_file(bundle + "/config.json", "{ not json"));
  std::string log = tmp() + "/runtime.log";
  auto r = bh({"--log", log, "--log-format", "json", "create", "--bundle", bundle, "badjson"});
  EXPECT_NE(r.exit_code, 0) << r;
  auto lines = split_lines(read_file(log));
  while (!lines.empty() && trim(lines.back()).empty())
    lines.pop_back();
  ASSERT_FALSE(lines.empty()) << "empty log file; " << r;
  json last = json::parse(lines.back(), nullptr, false);
  ASSERT_TRUE(last.is_object()) << "last log line is not JSON: " << lines.back();
  for (const char *key : {"level", "msg", "time"})
    EXPECT_TRUE(last.contains(key)) << key << ": " << last;
  EXPECT_EQ(last.value("level", ""), "error") << last;
  EXPECT_FALSE(last.value("msg", "").empty()) << last;
  EXPECT_FALSE(state_dir_exists("badjson"));
}

TEST_F(CliTest, LogTextOnError) {
  std::string bundle = make_bundle({"true"});
  ASSERT_TRUE(write_file(bundle + "/config.json", "{ not json"));
  std::string log = tmp() + "/runtime.log";
  auto r = bh({"--log", log, "--log-format", "text", "create", "--bundle", bundle, "badtext"});
  EXPECT_NE(r.exit_code, 0) << r;
  std::string text = read_file(log);
  EXPECT_TRUE(contains(text, "error")) << "log: " << text << "\n" << r;
  EXPECT_TRUE(
      json::parse(split_lines(text).empty() ? "" : split_lines(text).back(), nullptr, false).is_discarded())
      << "text log line parses as JSON: " << text;
}

} // namespace
