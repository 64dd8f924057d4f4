// The tmpfs mounts bulkheadd's checkpoints carry past CRIU, without CRIU (which the VM runs): a
// child in its own mount namespace holds real tmpfs mounts, save_tmpfs_mounts copies them as a
// dump would, TmpfsSources rebuilds them as a restore would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "bulkhead/io.hpp"
#include "namespaces/mountinfo.hpp"
#include "runtime/checkpoint_tmpfs.hpp"

namespace fs = std::filesystem;
using namespace bulkhead;
using namespace bulkhead::runtime;

namespace {

class CheckpointTmpfs : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root (mount namespaces, tmpfs mounts)";
    char tmpl[] = "/tmp/bulkhead-ckpt-tmpfs-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    for (const char *d : {"run", "shm", "stacked", "ro", "bound", "images", "state"})
      fs::create_directories(base_ / d);
  }
  void TearDown() override {
    if (holder_ > 0) {
      ::kill(holder_, SIGKILL);
      ::waitpid(holder_, nullptr, 0);
    }
    if (!base_.empty())
      fs::remove_all(base_);
  }

  // A child in a new mount namespace that mounts `setup` and waits; its mounts die with it.
  void hold(const std::string &setup) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    holder_ = ::fork();
    ASSERT_GE(holder_, 0);
    if (holder_ == 0) {
      ::close(p[0]);
      if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
        ::_exit(1);
      ::execl("/bin/sh", "sh", "-c",
              (setup + " && echo ready >&" + std::to_string(p[1]) + " && exec sleep 600").c_str(), nullptr);
      ::_exit(127);
    }
    ::close(p[1]);
    char buf[8] = {};
    ASSERT_GT(::read(p[0], buf, sizeof buf), 0) << "the mount namespace's setup failed: " << setup;
    ::close(p[0]);
  }

  static oci::Mount tmpfs_at(const fs::path &p) {
    oci::Mount m;
    m.destination = p.string();
    m.type = "tmpfs";
    m.source = "tmpfs";
    return m;
  }

  fs::path base_;
  pid_t holder_ = -1;
};

TEST_F(CheckpointTmpfs, SavesAndRebuildsWithTheirOptionsAndLeavesTheRestToCriu) {
  std::string b = base_.string();
  hold("mount -t tmpfs -o nosuid,nodev,mode=751,size=8m tmpfs " + b + "/run && echo state >" + b +
       "/run/app.state && mkdir " + b + "/run/sub && mount -t tmpfs -o size=1m tmpfs " + b + "/run/sub && " +
       "mount -t tmpfs -o noexec,strictatime tmpfs " + b + "/shm && echo seg >" + b + "/shm/seg && " +
       "mount -t tmpfs tmpfs " + b + "/stacked && mount -t tmpfs tmpfs " + b + "/stacked && " +
       "mount -t tmpfs -o ro tmpfs " + b + "/ro && " +
       // A file of /run bound over a masked file (declared external), one of /bound bound elsewhere.
       "touch " + b + "/run/null " + b + "/masked && mount --bind " + b + "/run/null " + b + "/masked && " +
       "mount -t tmpfs tmpfs " + b + "/bound && touch " + b + "/bound/f " + b + "/bound-f && mount --bind " +
       b + "/bound/f " + b + "/bound-f");
  oci::Spec spec;
  for (const char *d : {"run", "shm", "stacked", "ro", "bound"})
    spec.mounts.push_back(tmpfs_at(base_ / d));
  std::vector<migration::ExtMount> external{{b + "/masked", "/dev/null"}};
  spec.mounts.push_back(tmpfs_at(base_ / "not-mounted"));
  std::vector<std::string> notes;
  auto saved = save_tmpfs_mounts(holder_, spec, (base_ / "images").string(), external,
                                 [&notes](const std::string &n) { notes.push_back(n); });
  ASSERT_TRUE(saved) << saved.error().text();
  ASSERT_EQ(saved->size(), 2u);
  EXPECT_EQ((*saved)[0].key, b + "/run");
  EXPECT_EQ((*saved)[0].value, "bulkhead-tmpfs-0");
  EXPECT_EQ((*saved)[1].key, b + "/shm");
  EXPECT_EQ(notes.size(), 4u) << "stacked, read-only, bound elsewhere and missing are left to CRIU";
  EXPECT_TRUE(fs::exists(base_ / "images" / kTmpfsManifest));

  int cg = -1; // no cgroup: the filling process stays in this one
  auto sources = TmpfsSources::prepare((base_ / "images").string(), (base_ / "state").string(), cg);
  ASSERT_TRUE(sources) << sources.error().text();
  ASSERT_EQ(sources->ext_mounts().size(), 2u);
  fs::path run = sources->ext_mounts()[0].value, shm = sources->ext_mounts()[1].value;
  EXPECT_EQ(sources->ext_mounts()[0].key, "bulkhead-tmpfs-0");
  EXPECT_EQ(run, base_ / "state" / "criu-bulkhead-tmpfs-0");
  std::ifstream state(run / "app.state");
  std::string text((std::istreambuf_iterator<char>(state)), {});
  EXPECT_EQ(text, "state\n");
  EXPECT_TRUE(fs::is_directory(run / "sub")) << "the mount point under the mount on top";
  EXPECT_EQ(fs::status(run).permissions(), fs::perms(0751));
  EXPECT_TRUE(fs::exists(shm / "seg"));
  auto table = ns::read_mountinfo();
  ASSERT_TRUE(table);
  int found = 0;
  for (const auto &m : *table) {
    if (m.mount_point == run.string()) {
      ++found;
      EXPECT_NE(m.mount_options.find("nosuid"), std::string::npos) << m.mount_options;
      EXPECT_NE(m.mount_options.find("nodev"), std::string::npos) << m.mount_options;
      EXPECT_NE(m.super_options.find("size=8192k"), std::string::npos) << m.super_options;
    }
    if (m.mount_point == shm.string()) {
      ++found;
      EXPECT_NE(m.mount_options.find("noexec"), std::string::npos) << m.mount_options;
      EXPECT_EQ(m.mount_options.find("relatime"), std::string::npos) << "strictatime: " << m.mount_options;
    }
  }
  EXPECT_EQ(found, 2);
  sources = TmpfsSources{};
  EXPECT_FALSE(fs::exists(run)) << "detached and removed with the sources";

  // A second checkpoint into the same directory replaces the first one's files.
  ASSERT_TRUE(
      save_tmpfs_mounts(holder_, oci::Spec{}, (base_ / "images").string(), {}, [](const std::string &) {}));
  EXPECT_FALSE(fs::exists(base_ / "images" / kTmpfsManifest));
  EXPECT_FALSE(fs::exists(base_ / "images" / "bulkhead-tmpfs-0.tree"));
}

TEST_F(CheckpointTmpfs, RestoreRefusesAManifestThatAsksForMore) {
  auto images = (base_ / "images").string();
  auto state = (base_ / "state").string();
  for (const char *manifest :
       {R"({"version":2,"mounts":[]})",
        R"({"version":1,"mounts":[{"key":"bulkhead-tmpfs-1","options":"","flags":[]}]})",
        R"({"version":1,"mounts":[{"key":"../x","options":"","flags":[]}]})",
        R"({"version":1,"mounts":[{"key":"bulkhead-tmpfs-0","options":"size=1m,context=x","flags":[]}]})",
        R"({"version":1,"mounts":[{"key":"bulkhead-tmpfs-0","options":"","flags":["bind"]}]})",
        R"({"version":1,"mounts":[{"key":"bulkhead-tmpfs-0","options":"","flags":[]}]})" /* no archive */}) {
    ASSERT_TRUE(write_file_atomic(images + "/" + kTmpfsManifest, manifest, 0600));
    auto sources = TmpfsSources::prepare(images, state, -1);
    EXPECT_FALSE(sources) << manifest;
    EXPECT_TRUE(fs::is_empty(base_ / "state")) << "nothing left mounted after " << manifest;
  }
}

TEST(MountInfo, ParsesEscapesOptionalFieldsAndDevices) {
  auto table =
      ns::parse_mountinfo("36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:2 - ext3 "
                          "/dev/root rw,errors=continue\n"
                          "not a line\n"
                          "40 36 0:52 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=65536k,mode=755\n");
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].id, 36);
  EXPECT_EQ(table[0].parent, 35);
  EXPECT_EQ(table[0].dev, makedev(98, 0));
  EXPECT_EQ(table[0].root, "/mnt1");
  EXPECT_EQ(table[0].mount_point, "/mnt with space");
  EXPECT_EQ(table[0].fstype, "ext3");
  EXPECT_EQ(table[0].source, "/dev/root");
  EXPECT_EQ(table[0].super_options, "rw,errors=continue");
  EXPECT_EQ(table[1].mount_options, "rw,nosuid,nodev");
  EXPECT_EQ(table[1].super_options, "rw,size=65536k,mode=755");
}

} // namespace
