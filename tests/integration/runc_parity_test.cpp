// Behaviours scripts and engines written for runc 1.1 rely on (issue 16): exec's exit status 255
// for its own failures, run --keep, kill with signal 0, unknown commands, list's JSON key order,
// and --debug logging.
#include <unistd.h>

#include <algorithm>

#include "harness.hpp"

using namespace bh_test;

namespace {

class RuncParity : public BulkheadTest {
protected:
  // The default cgroupsPath is /bulkhead/<id>, shared by every test run on the host.
  static std::string uid(const std::string &name) { return name + "-" + std::to_string(::getpid()); }
  pid_t start_sleeper(const std::string &id) {
    auto bundle = make_bundle({"sleep", "100"});
    return create_and_start(bundle, id);
  }
};

TEST_F(RuncParity, ExecFailuresOfTheRuntimeExit255) {
  ASSERT_GT(start_sleeper(uid("ex")), 0);
  // The process's own status passes through: 1 is the command's, never the runtime's.
  auto own = bh({"exec", uid("ex"), "sh", "-c", "exit 1"});
  EXPECT_EQ(own.exit_code, 1) << own;

  auto r = bh({"exec", "--pid-file", tmp() + "/no/such/dir/pid", uid("ex"), "true"});
  EXPECT_EQ(r.exit_code, 255) << r;
  r = bh({"exec", uid("ex"), "no-such-binary"});
  EXPECT_EQ(r.exit_code, 255) << r;
  EXPECT_TRUE(contains(r.err, "executable file not found")) << r;
  r = bh({"exec", "nope", "true"});
  EXPECT_EQ(r.exit_code, 255) << r;

  if (!runtime_is_runc()) { // runc needs a cgroup freezer to pause; bulkhead has one even on hybrid hosts
    ASSERT_TRUE(bh({"pause", uid("ex")}).ok());
    r = bh({"exec", uid("ex"), "true"});
    EXPECT_EQ(r.exit_code, 255) << r;
    EXPECT_TRUE(contains(r.err, "paused")) << r;
    ASSERT_TRUE(bh({"resume", uid("ex")}).ok());
  }

  auto bundle = make_bundle({"true"});
  ASSERT_GT(create_and_start(bundle, uid("done")), 0);
  ASSERT_EQ(wait_for_status(uid("done"), "stopped"), "stopped");
  r = bh({"exec", uid("done"), "true"});
  EXPECT_EQ(r.exit_code, 255) << r;
}

TEST_F(RuncParity, RunKeepLeavesTheStoppedContainer) {
  std::string bundle = make_bundle({"sh", "-c", "exit 3"});
  auto r = bh({"run", "--keep", "--bundle", bundle, uid("kept")});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(status_of(uid("kept")), "stopped");
  auto list = bh({"list", "-q"});
  EXPECT_EQ(trim(list.out), uid("kept")) << list;
  auto del = bh({"delete", uid("kept")});
  EXPECT_TRUE(del.ok()) << del;
  EXPECT_FALSE(state_dir_exists(uid("kept")));

  // Without --keep the foreground run deletes it, as before.
  r = bh({"run", "--bundle", bundle, uid("gone")});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_FALSE(state_dir_exists(uid("gone")));
}

TEST_F(RuncParity, KillSignalZeroChecksTheProcessesExist) {
  ASSERT_GT(start_sleeper(uid("k0")), 0);
  auto r = bh({"kill", uid("k0"), "0"});
  EXPECT_TRUE(r.ok()) << r;
  r = bh({"kill", "--all", uid("k0"), "0"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(status_of(uid("k0")), "running") << "signal 0 did something";
  ASSERT_TRUE(bh({"kill", uid("k0"), "KILL"}).ok());
  ASSERT_EQ(wait_for_status(uid("k0"), "stopped"), "stopped");
  r = bh({"kill", uid("k0"), "0"});
  EXPECT_NE(r.exit_code, 0) << r;
}

TEST_F(RuncParity, UnknownCommandIsAnErrorWhateverFollows) {
  for (const std::vector<std::string> &args : {std::vector<std::string>{"nosuch"},
                                               {"nosuch", "-h"},
                                               {"nosuch", "--help"},
                                               {"--root", root(), "nosuch", "x"}}) {
    std::vector<std::string> argv{runtime_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv);
    EXPECT_NE(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.err, "nosuch")) << r;
    EXPECT_TRUE(r.out.empty()) << r;
  }
  if (runtime_is_runc())
    return;
  // -h names every command, one line each.
  auto help = run_command({runtime_path(), "-h"});
  ASSERT_EQ(help.exit_code, 0) << help;
  for (const char *cmd : {"create", "start", "run", "state", "kill", "delete", "exec", "list", "spec",
                          "features", "pause", "resume", "update", "ps", "events"}) {
    auto lines = split_lines(help.out);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [&](const std::string &l) {
                              auto w = split_words(l);
                              return !w.empty() && (w[0] == cmd || w[0] == std::string(cmd) + ",");
                            }),
              1)
        << cmd << "\n"
        << help;
  }
  auto v = run_command({runtime_path(), "--version"});
  ASSERT_TRUE(v.ok()) << v;
  EXPECT_TRUE(contains(v.out, "\nlibseccomp: 2.")) << v;
}

TEST_F(RuncParity, ListJsonKeepsRuncsKeyOrder) {
  ASSERT_GT(start_sleeper(uid("lj")), 0);
  auto r = bh({"list", "--format", "json"});
  ASSERT_TRUE(r.ok()) << r;
  size_t last = 0;
  for (const char *key : {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}) {
    size_t at = r.out.find(std::string("\"") + key + "\":");
    ASSERT_NE(at, std::string::npos) << key << "\n" << r;
    EXPECT_GT(at, last) << key << " out of order\n" << r;
    last = at;
  }
  EXPECT_EQ(r.out.rfind("[{\"ociVersion\":", 0), 0u) << r;
  EXPECT_EQ(json::parse(r.out)[0].value("owner", ""), "root") << r;
}

TEST_F(RuncParity, DebugLogsWhatTheRuntimeDoes) {
  std::string bundle = make_bundle({"true"});
  // Text lines on stderr without --log.
  auto r = bh({"--debug", "run", "--bundle", bundle, uid("dbg1")});
  ASSERT_TRUE(r.ok()) << r;
  auto lines = split_lines(r.err);
  auto debug_lines = std::count_if(lines.begin(), lines.end(),
                                   [](const std::string &l) { return contains(l, "level=debug"); });
  EXPECT_GE(debug_lines, 3) << r;
  EXPECT_TRUE(contains(r.err, uid("dbg1"))) << r;

  // JSON objects in the --log file with --log-format json; nothing on stderr then.
  std::string log = tmp() + "/debug.log";
  r = bh({"--debug", "--log", log, "--log-format", "json", "run", "--bundle", bundle, uid("dbg2")});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(trim(r.err).empty()) << r;
  int debug_objects = 0;
  for (const auto &l : split_lines(read_file(log))) {
    json j = json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l;
    debug_objects += j.value("level", "") == "debug";
  }
  EXPECT_GE(debug_objects, 3) << read_file(log);

  // And nothing at debug level without --debug.
  r = bh({"run", "--bundle", bundle, uid("dbg3")});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(contains(r.err, "debug")) << r;
}

} // namespace
