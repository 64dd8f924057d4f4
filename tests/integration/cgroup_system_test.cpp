// What system containers (systemd or an engine inside) need from the container's cgroup, as
// runc 1.1 gives it: every host controller offered, sub-cgroups of their own that `delete --force`
// removes, a frozen cgroup refused at once; and device access granted only by device rules.
// Controller tests need the VM (tests/vm/run-cgroup-tests.sh); the rest run on hybrid hosts too.
#include <fcntl.h>
#include <unistd.h>

#include "cgroup_harness.hpp"

using namespace bh_test;

namespace {

class CgroupSystem : public CgroupBase {
protected:
  // A cgroup of the test's own, outside /bulkhead; removed (children first) at teardown.
  std::string own_cgroup(const std::string &name) {
    std::string path = "/" + unique_id(name);
    own_.push_back(cgroup2_mount() + path);
    return path;
  }
  void TearDown() override {
    BulkheadTest::TearDown();
    for (auto it = own_.rbegin(); it != own_.rend(); ++it) {
      write_file(*it + "/cgroup.freeze", "0");
      for (const char *child : {"/ctr", "/c"})
        ::rmdir((*it + child).c_str());
      ::rmdir(it->c_str());
    }
  }
  std::vector<std::string> own_;
};

class CgroupSystemControllers : public CgroupTest {};

TEST_F(CgroupSystemControllers, ContainerCgroupOffersEveryHostController) {
  // No limits at all: the container still gets the root's whole controller list, so systemd
  // inside can delegate memory, pids, io... to its own units.
  auto r = run_container({"cat", "/sys/fs/cgroup/cgroup.controllers"}, [](json &c) {
    c["linux"]["namespaces"].push_back({{"type", "cgroup"}});
    c["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                           {"type", "cgroup2"},
                           {"source", "cgroup"},
                           {"options", {"nosuid", "noexec", "nodev"}}});
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string host = trim(read_file(cgroup2_mount() + "/cgroup.controllers"));
  ASSERT_FALSE(host.empty());
  EXPECT_EQ(trim(r.out), host) << r;
}

TEST_F(CgroupSystem, FrozenCgroupsPathFailsAtOnce) {
  std::string frozen = own_cgroup("frozen");
  std::string full = cgroup2_mount() + frozen;
  ASSERT_EQ(::mkdir(full.c_str(), 0755), 0) << full;
  ASSERT_TRUE(write_file(full + "/cgroup.freeze", "1"));

  // The frozen cgroup itself, and a fresh one below it (frozen by inheritance).
  for (const std::string &path : {frozen, frozen + "/ctr"}) {
    std::string id = unique_id("frz");
    std::string bundle = make_bundle({"true"}, [&](json &c) { c["linux"]["cgroupsPath"] = path; });
    auto r = bh({"create", "--bundle", bundle, id}, {.stdin_data = std::nullopt, .timeout = 20s});
    EXPECT_FALSE(r.timed_out) << r;
    EXPECT_LT(r.seconds, 10) << r;
    EXPECT_TRUE(failed_cleanly(r, "cgroup " + cgroup2_mount() + path + " is frozen", id)) << r;
  }
  EXPECT_TRUE(path_exists(full)) << "a cgroup the runtime did not make was removed";
  EXPECT_FALSE(path_exists(full + "/ctr")) << "the cgroup create made was left behind";
}

TEST_F(CgroupSystem, DeleteForceRemovesNestedAndThreadedSubCgroups) {
  std::string id = unique_id("nested");
  std::string bundle = make_bundle({"sh", "-c", "sleep 100 & sleep 100 & sleep 100 & wait"});
  ASSERT_GT(create_and_start(bundle, id), 0);
  std::string dir = cgroup_dir(id);
  ASSERT_TRUE(eventually([&] { return split_lines(cg_read(id, "cgroup.procs")).size() == 4; }));
  auto pids = split_lines(cg_read(id, "cgroup.procs"));

  // What systemd inside does: processes in leaves of a tree of its own, one of them threaded.
  ASSERT_EQ(::mkdir((dir + "/a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/a/b").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/a/b/cgroup.procs", pids[1]));
  ASSERT_EQ(::mkdir((dir + "/th").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/th/cgroup.procs", pids[2]));
  ASSERT_EQ(::mkdir((dir + "/th/t").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/th/t/cgroup.type", "threaded"));
  ASSERT_TRUE(write_file(dir + "/th/t/cgroup.threads", pids[2]));
  ASSERT_EQ(trim(read_file(dir + "/th/t/cgroup.type")), "threaded");

  auto ps = bh({"ps", "--format", "json", id});
  ASSERT_TRUE(ps.ok()) << ps;
  EXPECT_EQ(json::parse(ps.out).size(), 4u) << ps;

  auto r = bh({"delete", "--force", id});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(path_exists(dir));
  std::vector<pid_t> all;
  for (const auto &p : pids)
    all.push_back(std::stoi(p));
  EXPECT_TRUE(wait_gone(all, 5s).empty());
}

TEST_F(CgroupSystem, LinuxDevicesDoNotGrantDeviceAccess) {
  // resources.devices denies everything (the default config); /dev/kmsg is created because it is
  // listed, but opening it for writing stays forbidden, as in runc.
  auto r = run_container({"sh", "-c", "ls /dev/kmsg && echo x > /dev/kmsg; echo rc=$?"}, [](json &c) {
    c["linux"]["devices"] = {
        {{"path", "/dev/kmsg"}, {"type", "c"}, {"major", 1}, {"minor", 11}, {"fileMode", 0666}}};
  });
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "/dev/kmsg\nrc=1\n")) << r;
  EXPECT_TRUE(contains(r.err, "/dev/kmsg: Operation not permitted")) << r;
}

TEST_F(CgroupSystem, UnknownDeviceAccessLettersAreIgnoredWithAWarning) {
  auto r =
      run_container({"sh", "-c", "mknod /dev/blk b 7 0; head -c1 /dev/blk >/dev/null; true"}, [](json &c) {
        add_caps(c, {"CAP_MKNOD"});
        c["linux"]["resources"]["devices"].push_back(
            {{"allow", true}, {"type", "b"}, {"major", 7}, {"minor", 0}, {"access", "rwa"}});
      });
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(contains(r.err, "Operation not permitted")) << r;
  EXPECT_TRUE(contains(r.err, "linux.resources.devices[1].access: \\\"rwa\\\": letters other than r, w and m "
                              "are ignored"))
      << r;
}

TEST_F(CgroupSystem, ExecCgroupRunsInASubCgroupAndRefusesOthers) {
  std::string id = unique_id("execcg");
  std::string bundle = make_bundle({"sleep", "100"});
  ASSERT_GT(create_and_start(bundle, id), 0);
  ASSERT_EQ(::mkdir((cgroup_dir(id) + "/sub").c_str(), 0755), 0);
  for (const char *arg : {"sub", "pids:sub", "/sub"}) {
    auto r = bh({"exec", "--cgroup", arg, id, "cat", "/proc/self/cgroup"});
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_TRUE(contains(r.out, "0::/bulkhead/" + id + "/sub\n")) << arg << "\n" << r;
  }
  for (const char *arg : {"..", "../other", "sub/../.."}) {
    auto r = bh({"exec", "--cgroup", arg, id, "true"});
    EXPECT_EQ(r.exit_code, 255) << r;
    EXPECT_TRUE(contains(r.err, "is not a sub cgroup path")) << arg << "\n" << r;
  }
  auto r = bh({"exec", "--cgroup", "missing", id, "true"});
  EXPECT_EQ(r.exit_code, 255) << r;
  EXPECT_TRUE(contains(r.err, "No such file or directory")) << r;
  EXPECT_TRUE(bh({"delete", "--force", id}).ok());
  EXPECT_FALSE(path_exists(cgroup_dir(id)));
}

} // namespace
