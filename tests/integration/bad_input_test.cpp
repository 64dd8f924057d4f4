// Bad input: each failure exits non-zero with a one-line error naming the problem, and leaves no
// state dir, no host mount and no process behind.
#include "harness.hpp"

#include <filesystem>

using namespace bh_test;

namespace {

class BadInputTest : public BulkheadTest {
protected:
  CommandResult create_in(const std::string &bundle, const std::string &id) {
    return bh({"create", "--bundle", bundle, id});
  }
};

TEST_F(BadInputTest, MalformedConfigJson) {
  std::string bundle = make_bundle({"true"});
  ASSERT_TRUE(write_file(bundle + "/config.json", "{\"ociVersion\": \"1.0.2\", \"process\": {"));
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "c"), "malformed JSON", "c"));
}

TEST_F(BadInputTest, MissingConfigJson) {
  std::string bundle = make_bundle({"true"});
  std::filesystem::remove(bundle + "/config.json");
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "c"), "config.json", "c"));
}

TEST_F(BadInputTest, MissingBundleDir) {
  EXPECT_TRUE(failed_cleanly(create_in(tmp() + "/no-such-bundle", "c"), "no-such-bundle", "c"));
}

TEST_F(BadInputTest, MissingRootfs) {
  std::string bundle = make_bundle({"true"});
  std::filesystem::remove_all(rootfs(bundle));
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "c"), "rootfs", "c"));
}

TEST_F(BadInputTest, UnknownNamespace) {
  std::string bundle = make_bundle({"true"}, [](json &c) { c["linux"]["namespaces"][0]["type"] = "pidd"; });
  EXPECT_TRUE(
      failed_cleanly(create_in(bundle, "c"), "linux.namespaces[0].type: unknown namespace \"pidd\"", "c"));
}

TEST_F(BadInputTest, WrongJsonTypeNamesThePath) {
  std::string bundle = make_bundle({"true"}, [](json &c) { c["process"]["args"] = "sh"; });
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "c"), "process.args", "c"));
}

TEST_F(BadInputTest, DuplicateContainerId) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create(bundle, "dup");
  ASSERT_GT(pid, 0);
  auto r = create_in(bundle, "dup");
  EXPECT_TRUE(failed_cleanly(r, "already exists", "", {pid}));
  // The first container is untouched and still works.
  EXPECT_TRUE(state_dir_exists("dup"));
  EXPECT_EQ(status_of("dup"), "created");
  auto st = state("dup");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->value("pid", 0), pid);
  EXPECT_TRUE(process_exists(pid));
  auto s = bh({"start", "dup"});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(wait_for_status("dup", "running"), "running");
}

TEST_F(BadInputTest, InvalidContainerIds) {
  std::string bundle = make_bundle({"true"});
  for (const std::string &id : std::vector<std::string>{"a/b", "..", std::string(1025, 'a'), "a b"}) {
    auto r = create_in(bundle, id);
    EXPECT_TRUE(failed_cleanly(r, "invalid container id", "")) << "id '" << id << "'";
    EXPECT_TRUE(root_dirs().empty()) << "id '" << id << "' left " << ::testing::PrintToString(root_dirs());
  }
  EXPECT_FALSE(path_exists(root() + "/a"));
}

TEST_F(BadInputTest, IdWithEveryAllowedCharacterWorks) {
  std::string bundle = make_bundle({"true"});
  std::string id = "Az09._+-" + std::string(247, 'x'); // 255 bytes: the longest file name
  pid_t pid = create(bundle, id);
  EXPECT_GT(pid, 0);
  auto d = bh({"delete", "--force", id});
  EXPECT_TRUE(d.ok()) << d;
  EXPECT_TRUE(root_dirs().empty());
}

TEST_F(BadInputTest, IdLongerThanAFileNameWorksOrFailsCleanly) {
  // Valid (<= 1024 bytes) but longer than NAME_MAX: a runtime may map it to a shorter state dir
  // name, or refuse it; either way nothing may be left half-created.
  std::string bundle = make_bundle({"true"});
  std::string id(1024, 'y');
  auto r = create_in(bundle, id);
  if (r.ok()) {
    EXPECT_EQ(status_of(id), "created");
    auto d = bh({"delete", "--force", id});
    EXPECT_TRUE(d.ok()) << d;
    EXPECT_TRUE(root_dirs().empty());
  } else {
    EXPECT_TRUE(failed_cleanly(r, "", ""));
    EXPECT_TRUE(root_dirs().empty());
  }
}

TEST_F(BadInputTest, UnknownContainer) {
  for (std::vector<std::string> args : {std::vector<std::string>{"state", "nope"},
                                        {"start", "nope"},
                                        {"kill", "nope", "KILL"},
                                        {"delete", "nope"}}) {
    auto r = bh(args);
    EXPECT_TRUE(failed_cleanly(r, "does not exist", "nope")) << args[0];
  }
}

TEST_F(BadInputTest, StartOfRunningContainerFails) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "twice");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("twice", "running"), "running");
  auto r = bh({"start", "twice"});
  EXPECT_TRUE(failed_cleanly(r, "running", "", {pid}));
  EXPECT_EQ(status_of("twice"), "running");
}

TEST_F(BadInputTest, StartOfStoppedContainerFails) {
  std::string bundle = make_bundle({"true"});
  pid_t pid = create_and_start(bundle, "done");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("done", "stopped"), "stopped");
  auto r = bh({"start", "done"});
  EXPECT_TRUE(failed_cleanly(r, "stopped", ""));
}

TEST_F(BadInputTest, DeleteOfRunningContainerWithoutForceFails) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "busy");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("busy", "running"), "running");
  auto r = bh({"delete", "busy"});
  EXPECT_TRUE(failed_cleanly(r, "running", "", {pid}));
  EXPECT_EQ(status_of("busy"), "running");
  EXPECT_TRUE(process_exists(pid));
}

TEST_F(BadInputTest, KillWithUnknownSignal) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create_and_start(bundle, "sig");
  ASSERT_GT(pid, 0);
  auto r = bh({"kill", "sig", "SIGNOPE"});
  EXPECT_TRUE(failed_cleanly(r, "SIGNOPE", "", {pid}));
  EXPECT_EQ(status_of("sig"), "running");
}

TEST_F(BadInputTest, MissingCwd) {
  std::string bundle = make_bundle({"true"}, [](json &c) { c["process"]["cwd"] = "/nope"; });
  // runc creates a missing cwd; bulkhead refuses it, naming the path.
  auto r = bh({"run", "--bundle", bundle, "cwd"});
  EXPECT_TRUE(failed_cleanly(r, "/nope", "cwd"));
}

TEST_F(BadInputTest, RelativeCwdIsRejected) {
  std::string bundle = make_bundle({"true"}, [](json &c) { c["process"]["cwd"] = "tmp"; });
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "relcwd"), "process.cwd", "relcwd"));
}

TEST_F(BadInputTest, ExecutableNotFound) {
  std::string bundle = make_bundle({"nope"});
  auto r = bh({"run", "--bundle", bundle, "noexec"});
  EXPECT_TRUE(failed_cleanly(r, "executable file not found", "noexec"));
}

TEST_F(BadInputTest, EmptyArgs) {
  std::string bundle = make_bundle({}, [](json &c) { c["process"]["args"] = json::array(); });
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "noargs"), "args", "noargs"));
}

TEST_F(BadInputTest, FailingCreateRuntimeHook) {
  std::string bundle = make_bundle({"true"}, [](json &c) {
    c["hooks"]["createRuntime"] = {{{"path", "/bin/false"}}};
  });
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "hook"), "hook", "hook"));
}

TEST_F(BadInputTest, BadMountSource) {
  std::string bundle = make_bundle({"true"}, [&](json &c) {
    c["mounts"].push_back({{"destination", "/data"},
                           {"type", "bind"},
                           {"source", tmp() + "/missing-source"},
                           {"options", {"bind"}}});
  });
  EXPECT_TRUE(failed_cleanly(create_in(bundle, "badsrc"), "missing-source", "badsrc"));
}

TEST_F(BadInputTest, UnknownSubcommandAndFlags) {
  auto r = bh({"frobnicate"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_FALSE(trim(r.err).empty()) << r;
  auto f = bh({"create", "--no-such-flag", "x"});
  EXPECT_NE(f.exit_code, 0) << f;
  EXPECT_FALSE(trim(f.err).empty()) << f;
  EXPECT_TRUE(root_dirs().empty());
}

} // namespace

// --systemd-cgroup on a host where systemd is not PID 1 (this project's machines): refused before
// anything exists. The driver itself is tested with systemd in tests/systemd/.
TEST_F(BadInputTest, SystemdCgroupWithoutSystemd) {
  if (path_exists("/run/systemd/system"))
    GTEST_SKIP() << "systemd runs here; tests/systemd/run-vm-systemd-cgroup.sh covers the driver";
  std::string bundle = make_bundle({"true"});
  auto r = bh({"--systemd-cgroup", "create", "--bundle", bundle, "c"});
  EXPECT_TRUE(
      failed_cleanly(r, "--systemd-cgroup: systemd is not running on this host (/run/systemd/system)", "c"));
}

// The path is checked first, so a bad slice is named whether or not systemd runs.
TEST_F(BadInputTest, SystemdCgroupBadSlice) {
  for (const std::string path : {"a/b.slice:p:n", "../x.slice:p:n", "a--b.slice:p:n", "/bulkhead/c"}) {
    std::string bundle = make_bundle({"true"}, [&](json &c) { c["linux"]["cgroupsPath"] = path; });
    auto r = bh({"--systemd-cgroup=true", "create", "--bundle", bundle, "c"});
    EXPECT_TRUE(failed_cleanly(r, "linux.cgroupsPath \"" + path + "\"", "c")) << path;
  }
}
