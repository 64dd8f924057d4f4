// checkpoint/restore on the host: argument handling and every failure that needs no working CRIU
// (the dumps and restores themselves run in the VM: tests/migration/run-vm-criu.sh). Each failure
// names the problem and leaves the container as it was (running) or nothing behind (restore).
#include "harness.hpp"

#include <filesystem>

using namespace bh_test;

namespace {

class CheckpointTest : public BulkheadTest {
protected:
  // A running busybox container that sleeps with its stdio on the container's own /dev/null
  // (CRIU cannot dump fds that lead outside the container's mounts).
  pid_t start_sleeper(const std::string &id) {
    std::string bundle =
        make_bundle({"sh", "-c", "exec </dev/null >/dev/null 2>&1; while :; do sleep 1; done"});
    return create_and_start(bundle, id);
  }
  json features() {
    auto r = bh({"features"});
    EXPECT_TRUE(r.ok()) << r;
    return json::parse(r.out, nullptr, false);
  }
};

TEST_F(CheckpointTest, FeaturesDescribeCheckpoint) {
  json f = features();
  ASSERT_TRUE(f.contains("checkpoint")) << f.dump();
  const json &c = f["checkpoint"];
  EXPECT_TRUE(c["enabled"].is_boolean());
  EXPECT_FALSE(c["lazyPages"].get<bool>()); // libcriu 3.17 cannot request lazy pages
  EXPECT_EQ(f["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
            c["enabled"].get<bool>() ? "true" : "false");
  if (!c["enabled"].get<bool>()) {
    EXPECT_FALSE(c["error"].get<std::string>().empty()) << c.dump();
  }
}

TEST_F(CheckpointTest, UnknownContainer) {
  auto r = bh({"checkpoint", "--image-path", tmp() + "/img", "nope"});
  EXPECT_TRUE(failed_cleanly(r, "does not exist", "nope"));
}

TEST_F(CheckpointTest, CreatedContainerIsRefused) {
  std::string bundle = make_bundle({"true"});
  pid_t pid = create(bundle, "c");
  ASSERT_GT(pid, 0);
  auto r = bh({"checkpoint", "--image-path", tmp() + "/img", "c"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "cannot be checkpointed: it is created")) << r;
  EXPECT_EQ(status_of("c"), "created");
}

TEST_F(CheckpointTest, BadFlagValuesLeaveTheContainerRunning) {
  pid_t pid = start_sleeper("c");
  ASSERT_GT(pid, 0);
  struct Case {
    std::vector<std::string> flags;
    std::string text;
  };
  for (const Case &c : std::vector<Case>{
           {{"--manage-cgroups-mode", "bogus"}, "soft, full, strict or ignore"},
           {{"--empty-ns", "pid"}, "only \"network\""},
           {{"--page-server", "nocolon"}, "must be ADDRESS:PORT"},
           {{"--page-server", "127.0.0.1:99999"}, "must be ADDRESS:PORT"},
           {{"--status-fd", "987"}, "--status-fd 987"},
           {{"--lazy-pages"}, "cannot request lazy pages"},
       }) {
    std::vector<std::string> args = {"checkpoint", "--image-path", tmp() + "/img"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    args.push_back("c");
    auto r = bh(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.text)) << c.text << "\n" << r;
    EXPECT_EQ(status_of("c"), "running") << c.text;
  }
  EXPECT_TRUE(process_exists(pid));
}

TEST_F(CheckpointTest, GoSingleDashSpellings) {
  // runc's Go flags: "-image-path X -leave-running" parse as the long options (the container does
  // not exist, which is the error that proves the flags were accepted).
  auto r = bh({"checkpoint", "-image-path", tmp() + "/img", "-leave-running", "-tcp-established", "nope"});
  EXPECT_TRUE(failed_cleanly(r, "does not exist", "nope"));
  r = bh({"restore", "-image-path", tmp() + "/none", "-detach", "-no-subreaper", "-bundle", tmp(), "nope"});
  EXPECT_TRUE(failed_cleanly(r, "--image-path", "nope"));
}

TEST_F(CheckpointTest, RestoreWithoutImagesLeavesNothing) {
  std::string bundle = make_bundle({"true"});
  auto r = bh({"restore", "-d", "--image-path", tmp() + "/missing", "--bundle", bundle, "r"});
  EXPECT_TRUE(failed_cleanly(r, "--image-path " + tmp() + "/missing: No such file or directory", "r"));
  std::string empty = make_temp_dir("empty-images");
  r = bh({"restore", "-d", "--image-path", empty, "--bundle", bundle, "r"});
  EXPECT_TRUE(failed_cleanly(r, "no checkpoint there (no inventory.img)", "r"));
}

TEST_F(CheckpointTest, RestoreBadInputLeavesNothing) {
  std::string images = make_temp_dir("images");
  ASSERT_TRUE(write_file(images + "/inventory.img", ""));
  std::string bundle = make_bundle({"true"});
  auto r = bh({"restore", "-d", "--image-path", images, "--bundle", tmp() + "/no-bundle", "r"});
  EXPECT_TRUE(failed_cleanly(r, "no-bundle", "r"));
  r = bh({"restore", "-d", "--image-path", images, "--bundle", bundle, "--manage-cgroups-mode", "x", "r"});
  EXPECT_TRUE(failed_cleanly(r, "soft, full, strict or ignore", "r"));
  r = bh({"restore", "-d", "--image-path", images, "--bundle", bundle, "bad/id"});
  EXPECT_EQ(r.exit_code, 1) << r;
  std::string tty = make_bundle({"sh"}, [](json &c) { c["process"]["terminal"] = true; });
  r = bh({"restore", "-d", "--image-path", images, "--bundle", tty, "r"});
  EXPECT_TRUE(failed_cleanly(r, "needs --console-socket", "r"));
}

TEST_F(CheckpointTest, MissingCriuIsAClearError) {
  pid_t pid = start_sleeper("c");
  ASSERT_GT(pid, 0);
  auto r = run_command({"/usr/bin/env", "PATH=/nonexistent", runtime_path(), "--root", root(), "checkpoint",
                        "--image-path", tmp() + "/img", "c"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "criu: not found in PATH (/nonexistent)")) << r;
  EXPECT_TRUE(contains(r.err, "apt-get install criu")) << r;
  EXPECT_EQ(status_of("c"), "running");
  r = run_command({"/usr/bin/env", "PATH=/nonexistent", runtime_path(), "features"});
  ASSERT_TRUE(r.ok()) << r;
  json f = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(f["checkpoint"]["enabled"].get<bool>());
  EXPECT_TRUE(contains(f["checkpoint"]["error"].get<std::string>(), "not found in PATH")) << f.dump();
}

// Where CRIU refuses the kernel (Debian's 3.17 on a newer kernel than 6.1: a vDSO layout error),
// the dump fails with CRIU's own error lines and the container keeps running, not frozen.
TEST_F(CheckpointTest, KernelRefusalIsReadableAndLeavesTheContainerRunning) {
  json f = features();
  if (f["checkpoint"]["criu"].get<std::string>().empty())
    GTEST_SKIP() << "criu is not installed";
  if (f["checkpoint"]["enabled"].get<bool>())
    GTEST_SKIP() << "CRIU works on this kernel: tests/migration/run-vm-criu.sh covers the dumps";
  pid_t pid = start_sleeper("c");
  ASSERT_GT(pid, 0);
  std::string images = tmp() + "/img";
  auto r = bh({"checkpoint", "--image-path", images, "c"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(contains(r.err, "checkpoint of container \"c\" failed, the container is left running")) << r;
  EXPECT_TRUE(contains(r.err, "Error (")) << r;            // CRIU's own lines, quoted
  EXPECT_TRUE(contains(r.err, images + "/dump.log")) << r; // and where the rest is
  EXPECT_EQ(status_of("c"), "running");
  EXPECT_TRUE(process_exists(pid));
  EXPECT_FALSE(is_zombie(pid));
}

} // namespace
