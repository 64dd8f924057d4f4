// The container's cgroup over its life: device filter, freeze/thaw, kill --all, removal, and a
// hierarchy left as it was. These need only cgroup2 (no controllers), so they run on hybrid hosts
// too; the VM runs them with the rest of the cgroup suite.
#include <filesystem>

#include "cgroup_harness.hpp"

using namespace bh_test;

namespace {

class CgroupLifecycle : public CgroupBase {};

TEST_F(CgroupLifecycle, DevicesNullUsableDeniedBlockDeviceOpenFailsEperm) {
  auto r = run_container({"sh", "-c",
                          "echo x > /dev/null && head -c4 /dev/zero | wc -c && echo null-ok; "
                          "mknod /dev/blk b 7 0 && echo mknod-ok; head -c1 /dev/blk; echo open=$?; "
                          "mknod /dev/mem2 c 1 1 && head -c1 /dev/mem2; echo mem=$?"},
                         [](json &c) { add_caps(c, {"CAP_MKNOD"}); });
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "4\nnull-ok\n")) << r;
  EXPECT_TRUE(contains(r.out, "mknod-ok\nopen=1\n")) << r;
  EXPECT_TRUE(contains(r.out, "mem=1\n")) << r;
  EXPECT_TRUE(contains(r.err, "head: /dev/blk: Operation not permitted")) << r;
  EXPECT_TRUE(contains(r.err, "head: /dev/mem2: Operation not permitted")) << r;
}

TEST_F(CgroupLifecycle, DevicesAllowRuleOpensAccess) {
  // A later allow rule wins over the default deny: /dev/loop-like node 7:0 becomes openable (ENXIO
  // or success instead of EPERM).
  auto r =
      run_container({"sh", "-c", "mknod /dev/blk b 7 0; head -c1 /dev/blk >/dev/null; true"}, [](json &c) {
        add_caps(c, {"CAP_MKNOD"});
        c["linux"]["resources"]["devices"].push_back(
            {{"allow", true}, {"type", "b"}, {"major", 7}, {"minor", 0}, {"access", "rwm"}});
      });
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(contains(r.err, "Operation not permitted")) << r;
}

TEST_F(CgroupLifecycle, UpdateReplacesTheDeviceRulesOfARunningContainer) {
  std::string id = unique_id("devupd");
  std::string bundle = make_bundle({"sh", "-c",
                                    "mknod /dev/blk b 7 0; while :; do head -c1 /dev/blk > /dev/null 2> /st; "
                                    "echo done >> /st; sleep 0.1; done"},
                                   [](json &c) { add_caps(c, {"CAP_MKNOD"}); });
  ASSERT_GT(create_and_start(bundle, id), 0);
  std::string st = rootfs(bundle) + "/st";
  ASSERT_TRUE(eventually([&] { return contains(read_file(st), "Operation not permitted\ndone"); }))
      << read_file(st);
  auto r = bh({"update", "-r", "-", id},
              {.stdin_data = std::string(R"({"devices":[{"allow":false,"access":"rwm"},)"
                                         R"({"allow":true,"type":"b","major":7,"minor":0,"access":"r"}]})")});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(eventually([&] {
    std::string v = read_file(st);
    return contains(v, "done") && !contains(v, "Operation not permitted");
  })) << read_file(st);
}

TEST_F(CgroupLifecycle, PauseFreezesEveryProcessAndResumeContinues) {
  std::string id = unique_id("pause");
  std::string bundle = make_bundle({"sh", "-c",
                                    "sh -c 'i=0; while :; do i=$((i+1)); echo $i > /c2; sleep 0.1; done' & "
                                    "i=0; while :; do i=$((i+1)); echo $i > /c1; sleep 0.1; done"});
  ASSERT_GT(create_and_start(bundle, id), 0);
  std::string c1 = rootfs(bundle) + "/c1", c2 = rootfs(bundle) + "/c2";
  ASSERT_TRUE(eventually([&] { return !read_file(c1).empty() && !read_file(c2).empty(); }));

  auto r = bh({"pause", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(status_of(id), "paused");
  EXPECT_TRUE(contains(read_file(cgroup_dir(id) + "/cgroup.events"), "frozen 1"));
  std::string v1 = read_file(c1), v2 = read_file(c2);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(read_file(c1), v1) << "the container's init ran while paused";
  EXPECT_EQ(read_file(c2), v2) << "a child process ran while paused";
  r = bh({"pause", id});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, "cannot be paused: it is paused")) << r;

  r = bh({"resume", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(status_of(id), "running");
  EXPECT_TRUE(eventually([&] { return read_file(c1) != v1 && read_file(c2) != v2; }));
  r = bh({"resume", id});
  EXPECT_TRUE(contains(r.err, "cannot be resumed: it is running")) << r;

  // delete --force of a paused container: thawed, killed, removed with its cgroup.
  ASSERT_TRUE(bh({"pause", id}).ok());
  r = bh({"delete", "--force", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(path_exists(cgroup_dir(id)));
}

TEST_F(CgroupLifecycle, KillAllAndDeleteRemoveTheCgroup) {
  std::string id = unique_id("kill");
  std::string bundle = make_bundle({"sh", "-c", "sleep 100 & sleep 100 & wait"});
  pid_t pid = create_and_start(bundle, id);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(eventually([&] { return split_lines(cg_read(id, "cgroup.procs")).size() == 3; }));
  EXPECT_TRUE(contains(read_file("/proc/" + std::to_string(pid) + "/cgroup"), "/bulkhead/" + id));
  auto r = bh({"kill", "--all", id, "KILL"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  r = bh({"delete", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(path_exists(cgroup_dir(id)));
}

// Every cgroup directory below the mount (relative paths), or only ours on a shared host.
std::vector<std::string> cgroup_tree(const std::string &only_prefix) {
  std::vector<std::string> out;
  std::string mount = cgroup2_mount();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(mount, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec))
      continue;
    std::string rel = it->path().string().substr(mount.size());
    if (only_prefix.empty() || contains(rel, only_prefix))
      out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(CgroupLifecycle, ManyContainersLeaveTheHierarchyAsItWas) {
  const char *env = std::getenv("BULKHEAD_CGROUP_CYCLES");
  int cycles = env ? std::atoi(env) : 50;
  // On a shared dev host other containers come and go: compare only ours there.
  std::string prefix = host_has_cgroup2_controllers() ? "" : unique_id("many");
  bool limits = host_has_cgroup2_controllers();
  std::string bundle = make_bundle({"sleep", "100"}, [limits](json &c) {
    if (limits) {
      c["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
      c["linux"]["resources"]["pids"] = {{"limit", 10}};
    }
  });
  // A first container makes <mount>/bulkhead, which stays (as runc leaves parents).
  ASSERT_GT(create(bundle, unique_id("many-warmup")), 0);
  ASSERT_TRUE(bh({"delete", "--force", unique_id("many-warmup")}).ok());
  auto before = cgroup_tree(prefix);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < cycles; ++i) {
    std::string id = unique_id("many") + "-" + std::to_string(i);
    auto r = bh({"create", "--bundle", bundle, id});
    ASSERT_TRUE(r.ok()) << "cycle " << i << ": " << r;
    if (i % 2) {
      ASSERT_TRUE(bh({"start", id}).ok());
    }
    r = bh({"delete", "--force", id});
    ASSERT_TRUE(r.ok()) << "cycle " << i << ": " << r;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "[ info     ] " << cycles << " containers created and deleted in " << secs << " s\n";
  EXPECT_EQ(cgroup_tree(prefix), before);
}

} // namespace
