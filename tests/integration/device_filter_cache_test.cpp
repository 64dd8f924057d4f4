// The device-filter cache (cgroups/device_filter.hpp): containers with the same device rules share
// one verified eBPF program pinned in bpffs, a pin that does not hold the program its name
// promises is replaced instead of trusted, and `update` with unchanged rules keeps the filter.
// Each test runs in a private mount namespace of its own with a fresh bpffs on /sys/fs/bpf (the
// host's is left alone, and this host may have none).
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "cgroup_harness.hpp"

using namespace bh_test;

namespace {

constexpr const char *kPinDir = "/sys/fs/bpf/bulkhead";

// Ids of the device programs attached to a cgroup directory.
std::vector<uint32_t> device_programs(const std::string &cgroup) {
  int fd = ::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return {};
  std::vector<uint32_t> ids(64);
  bpf_attr q;
  std::memset(&q, 0, sizeof q);
  q.query.target_fd = static_cast<uint32_t>(fd);
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  q.query.prog_cnt = static_cast<uint32_t>(ids.size());
  long rc = ::syscall(SYS_bpf, BPF_PROG_QUERY, &q, sizeof q);
  ::close(fd);
  if (rc < 0)
    return {};
  ids.resize(q.query.prog_cnt);
  return ids;
}

std::vector<std::string> pins() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto &e : std::filesystem::directory_iterator(kPinDir, ec))
    out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

class DeviceFilterCache : public CgroupBase {
protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root";
    // Before the base records the mount table, so the bpffs counts as already there.
    if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
      GTEST_SKIP() << "no private mount namespace: " << std::strerror(errno);
    if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0)
      GTEST_SKIP() << "cannot mount bpffs on /sys/fs/bpf: " << std::strerror(errno);
    CgroupBase::SetUp();
  }

  // A running `sleep` container with the default device rules plus `extra`.
  std::string start_sleeper(const std::string &name, const json &extra = json::array()) {
    std::string id = unique_id(name);
    std::string bundle = make_bundle({"sleep", "1000"}, [&](json &c) {
      for (const auto &rule : extra)
        c["linux"]["resources"]["devices"].push_back(rule);
    });
    EXPECT_GT(create_and_start(bundle, id), 0);
    return id;
  }
};

TEST_F(DeviceFilterCache, ContainersWithTheSameRulesShareOnePinnedProgram) {
  std::string a = start_sleeper("share-a"), b = start_sleeper("share-b");
  auto pa = device_programs(cgroup_dir(a)), pb = device_programs(cgroup_dir(b));
  ASSERT_EQ(pa.size(), 1u);
  ASSERT_EQ(pb.size(), 1u);
  EXPECT_EQ(pa, pb) << "the second container loaded its own program";
  auto p = pins();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(contains(p[0], "/devices-")) << p[0];

  json allow_loop =
      json::array({{{"allow", true}, {"type", "b"}, {"major", 7}, {"minor", 0}, {"access", "r"}}});
  std::string c = start_sleeper("share-c", allow_loop);
  auto pc = device_programs(cgroup_dir(c));
  ASSERT_EQ(pc.size(), 1u);
  EXPECT_NE(pc, pa) << "different rules got the same program";
  EXPECT_EQ(pins().size(), 2u);
}

TEST_F(DeviceFilterCache, AProgramPinnedUnderAnotherRuleSetsNameIsReplacedNotTrusted) {
  // Pin the default rules' program and a more permissive one (block 7:0 allowed) ...
  auto opened = run_container({"true"});
  ASSERT_TRUE(opened.ok()) << opened;
  auto defaults = pins();
  ASSERT_EQ(defaults.size(), 1u);
  json allow_loop = {{"allow", true}, {"type", "b"}, {"major", 7}, {"minor", 0}, {"access", "rwm"}};
  auto permissive =
      run_container({"true"}, [&](json &c) { c["linux"]["resources"]["devices"].push_back(allow_loop); });
  ASSERT_TRUE(permissive.ok()) << permissive;
  auto both = pins();
  ASSERT_EQ(both.size(), 2u);
  std::string permissive_pin = both[0] == defaults[0] ? both[1] : both[0];
  // ... and put the permissive program where the default rules' program is looked up.
  ASSERT_EQ(std::rename(permissive_pin.c_str(), defaults[0].c_str()), 0) << std::strerror(errno);

  auto r = run_container({"sh", "-c", "mknod /dev/blk b 7 0 && head -c1 /dev/blk; echo open=$?"},
                         [](json &c) { add_caps(c, {"CAP_MKNOD"}); });
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "open=1")) << r;
  EXPECT_TRUE(contains(r.err, "head: /dev/blk: Operation not permitted")) << r;
  EXPECT_EQ(pins(), std::vector<std::string>{defaults[0]}) << "the foreign pin was not replaced";
}

TEST_F(DeviceFilterCache, UpdateWithTheSameRulesKeepsTheFilterAttached) {
  std::string id = unique_id("same");
  std::string bundle = make_bundle({"sh", "-c",
                                    "mknod /dev/blk b 7 0; while :; do head -c1 /dev/blk > /dev/null 2> /st; "
                                    "echo done >> /st; sleep 0.1; done"},
                                   [](json &c) { add_caps(c, {"CAP_MKNOD"}); });
  ASSERT_GT(create_and_start(bundle, id), 0);
  auto before = device_programs(cgroup_dir(id));
  ASSERT_EQ(before.size(), 1u);
  json config = json::parse(read_file(bundle + "/config.json"));
  auto r = bh({"update", "-r", "-", id}, {.stdin_data = config["linux"]["resources"].dump()});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(device_programs(cgroup_dir(id)), before);
  std::string st = rootfs(bundle) + "/st";
  ::truncate(st.c_str(), 0);
  EXPECT_TRUE(eventually([&] { return contains(read_file(st), "Operation not permitted\ndone"); }))
      << read_file(st);
}

} // namespace
