// Rootless mode: the real binary run by an unprivileged user (nobody, through setpriv), on a config
// written by `bulkhead spec --rootless` as that user, with no --root: the state directory must be
// $XDG_RUNTIME_DIR/bulkhead, container root must be the caller's uid on the host, and what cannot
// work without root (no user namespace, several ids without newuidmap, limits without a delegated
// cgroup) must be a clear error that leaves nothing behind.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "harness.hpp"

namespace bh_test {
namespace {

constexpr uid_t kNobody = 65534;

class RootlessTest : public BulkheadTest {
protected:
  void SetUp() override {
    BulkheadTest::SetUp();
    if (runtime_is_runc())
      GTEST_SKIP() << "runc's rootless rules differ in details (its own test suite covers them)";
    if (!kernel_has_user_namespaces())
      GTEST_SKIP() << "no user namespaces";
    if (::access("/usr/bin/setpriv", X_OK) != 0)
      GTEST_SKIP() << "setpriv (util-linux) is missing";
    // nobody must reach the bundles under the test's temp dir (mkdtemp made it 0700).
    ASSERT_EQ(::chmod(tmp().c_str(), 0755), 0);
    xdg_ = make_temp_dir("xdg");
    ASSERT_EQ(::chown(xdg_.c_str(), kNobody, kNobody), 0);
    ASSERT_EQ(::chmod(xdg_.c_str(), 0700), 0);
  }
  void TearDown() override {
    // Containers of a failed test are nobody's: delete them as nobody, then let the harness
    // reap whatever is left (it is the subreaper of every container init).
    for (const auto &id : made_)
      (void)as_nobody({"delete", "--force", id});
    BulkheadTest::TearDown();
  }

  // `bulkhead ARGS` as uid/gid 65534 with no supplementary groups and no --root.
  CommandResult as_nobody(const std::vector<std::string> &args, const std::string &path_env = "") {
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                     "--clear-groups",   "/usr/bin/env",  "XDG_RUNTIME_DIR=" + xdg_};
    if (!path_env.empty())
      argv.push_back("PATH=" + path_env);
    argv.push_back(runtime_path());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }

  // A bundle whose config.json is `bulkhead spec --rootless` run by nobody, then `mutate`d.
  std::string rootless_bundle(const std::vector<std::string> &args, const Mutator &mutate = {}) {
    std::string bundle = make_bundle({"true"});
    EXPECT_EQ(::unlink((bundle + "/config.json").c_str()), 0);
    EXPECT_EQ(::chmod(bundle.c_str(), 0777), 0); // nobody writes the config
    // A rootless user's rootfs is its own (podman's storage, an unpacked image).
    EXPECT_TRUE(run_command({"chown", "-R", "65534:65534", rootfs(bundle)}).ok());
    auto spec = as_nobody({"spec", "--rootless", "--bundle", bundle});
    EXPECT_TRUE(spec.ok()) << spec;
    json config = json::parse(read_file(bundle + "/config.json"));
    config["process"]["terminal"] = false;
    config["process"]["args"] = args;
    if (mutate)
      mutate(config);
    write_config(bundle, config);
    return bundle;
  }

  std::string state_root() const { return xdg_ + "/bulkhead"; }
  std::vector<std::string> state_entries() const {
    auto r = run_command({"ls", "-A", state_root()});
    return split_lines(r.out);
  }

  std::string xdg_;
  std::vector<std::string> made_;
};

TEST_F(RootlessTest, RunMapsRootToTheCallerAndKeepsStateUnderXdgRuntimeDir) {
  std::string data = make_temp_dir("data");
  ASSERT_EQ(::chown(data.c_str(), kNobody, kNobody), 0);
  std::string bundle = rootless_bundle(
      {"sh", "-c", "id -u; cat /proc/self/uid_map; echo made > /data/file; test -c /dev/null && echo dev-ok"},
      [&](json &c) {
        c["mounts"].push_back(
            {{"destination", "/data"}, {"type", "bind"}, {"source", data}, {"options", {"rbind"}}});
      });
  std::string id = "rootless-run";
  made_.push_back(id);
  auto r = as_nobody({"run", "--bundle", bundle, id});
  ASSERT_TRUE(r.ok()) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  EXPECT_EQ(lines[0], "0") << "root inside";
  EXPECT_EQ(split_words(lines[1]), (std::vector<std::string>{"0", "65534", "1"}))
      << "uid 0 is nobody outside";
  EXPECT_EQ(lines[2], "dev-ok");
  struct stat st {};
  ASSERT_EQ(::stat((data + "/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody) << "a file container root made belongs to the caller on the host";
  // The default state directory is the caller's, and run left nothing in it.
  EXPECT_TRUE(path_exists(state_root())) << "no --root: $XDG_RUNTIME_DIR/bulkhead";
  EXPECT_TRUE(state_entries().empty()) << read_file(state_root());
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(RootlessTest, CreateStartKillDeleteRunAsTheCallersUidOnTheHost) {
  std::string bundle = rootless_bundle({"sleep", "1000"});
  std::string id = "rootless-life";
  made_.push_back(id);
  std::string pid_file = xdg_ + "/init.pid";
  auto c = as_nobody({"create", "--bundle", bundle, "--pid-file", pid_file, id});
  ASSERT_TRUE(c.ok()) << c;
  ASSERT_TRUE(as_nobody({"start", id}).ok());
  auto st = as_nobody({"state", id});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(json::parse(st.out)["status"], "running");
  pid_t pid = read_pid_file(pid_file);
  ASSERT_GT(pid, 0);
  // Uid: real effective saved fs, as the host sees them.
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  EXPECT_TRUE(contains(status, "Uid:\t65534\t65534\t65534\t65534")) << status;
  ASSERT_TRUE(as_nobody({"kill", id, "KILL"}).ok());
  EXPECT_TRUE(wait_gone({pid}, 10s).empty());
  auto d = as_nobody({"delete", id});
  ASSERT_TRUE(d.ok()) << d;
  EXPECT_TRUE(state_entries().empty());
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(RootlessTest, WithoutAUserNamespaceIsAClearErrorAndLeavesNothing) {
  std::string bundle = rootless_bundle({"true"}, [](json &c) {
    json kept = json::array();
    for (const auto &n : c["linux"]["namespaces"])
      if (n["type"] != "user")
        kept.push_back(n);
    c["linux"]["namespaces"] = kept;
    c["linux"].erase("uidMappings");
    c["linux"].erase("gidMappings");
  });
  auto r = as_nobody({"run", "--bundle", bundle, "rootless-nouserns"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "needs a user namespace")) << r;
  EXPECT_TRUE(contains(r.err, "uid 65534")) << r;
  EXPECT_TRUE(state_entries().empty());
  EXPECT_TRUE(live_children().empty());
}

TEST_F(RootlessTest, SeveralIdsWithoutNewuidmapNameThePackageAndLeaveNothing) {
  // More than the caller's own id needs the setuid helper; PATH without it stands for a host
  // where the uidmap package is not installed.
  std::string bundle = rootless_bundle({"true"}, [](json &c) {
    c["linux"]["uidMappings"].push_back({{"containerID", 1}, {"hostID", 100000}, {"size", 1000}});
  });
  std::string empty_dir = make_temp_dir("empty-path");
  auto r = as_nobody({"run", "--bundle", bundle, "rootless-nohelper"}, empty_dir);
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "newuidmap is not installed (Debian package uidmap)")) << r;
  EXPECT_TRUE(state_entries().empty());
  EXPECT_TRUE(wait_gone(live_children(), 5s).empty());
  EXPECT_TRUE(no_new_mounts());
}

TEST_F(RootlessTest, LimitsWithoutADelegatedCgroupAreRefusedAndLeaveNothing) {
  std::string bundle = rootless_bundle({"true"}, [](json &c) {
    c["linux"]["resources"] = {{"pids", {{"limit", 64}}}};
  });
  auto r = as_nobody({"run", "--bundle", bundle, "rootless-limits"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "linux.resources")) << r;
  EXPECT_TRUE(contains(r.err, "cgroup")) << r;
  EXPECT_TRUE(state_entries().empty());
  EXPECT_TRUE(live_children().empty());
}

} // namespace
} // namespace bh_test
