// Root filesystem behaviours where bulkhead matches runc 1.1 (issue 16): --no-pivot leaves a root
// that is the mount namespace's root, a read-only /dev still gets its nodes, and every
// rootfsPropagation value works, with later config.json edits never reaching the container.
#include <unistd.h>

#include <algorithm>

#include "harness.hpp"

using namespace bh_test;

namespace {

class RootfsParity : public BulkheadTest {};

TEST_F(RootfsParity, NoPivotRootIsTheMountNamespacesRoot) {
  if (!kernel_has_user_namespaces())
    GTEST_SKIP() << "needs user namespaces";
  // A chrooted process may not create user namespaces; after MS_MOVE onto / it is not chrooted.
  std::string bundle = make_bundle({"sh", "-c",
                                    "unshare -mrpf sh -c 'echo inner-ok'; echo rc=$?; "
                                    "unshare -mrpf sh -c 'mkdir -p /tmp/p && mount -t proc proc /tmp/p'; "
                                    "echo proc=$?"},
                                   [](json &c) {
                                     // Mapping root in a new user namespace needs CAP_SETFCAP
                                     // (Linux 5.12), as with runc.
                                     for (const char *set : {"bounding", "effective", "permitted"})
                                       c["process"]["capabilities"][set].push_back("CAP_SETFCAP");
                                   });
  auto r = bh({"run", "--no-pivot", "--bundle", bundle, "nopivot-" + std::to_string(::getpid())});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "inner-ok\nrc=0\n")) << r;
  // The masked /proc makes a fresh procfs "too revealing": refused, as it must be.
  EXPECT_TRUE(contains(r.out, "proc=1\n") || contains(r.out, "proc=255\n")) << r;
  EXPECT_TRUE(contains(r.err, "ermission denied") || contains(r.err, "not permitted")) << r;
}

TEST_F(RootfsParity, ReadOnlyDevStillGetsItsNodesAndMountPoints) {
  auto r = run_container({"sh", "-c",
                          "ls /dev/pts/ptmx /dev/null /dev/shm >/dev/null && echo nodes-ok; "
                          "echo x > /dev/null && echo null-writable; touch /dev/new; echo touch=$?"},
                         [](json &c) {
                           for (auto &m : c["mounts"])
                             if (m["destination"] == "/dev")
                               m["options"].push_back("ro");
                         });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "nodes-ok\nnull-writable\ntouch=1\n")) << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
}

TEST_F(RootfsParity, EveryRootfsPropagationWorksAndLaterConfigEditsDoNotLeakIn) {
  for (const char *mode :
       {"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"}) {
    SCOPED_TRACE(mode);
    std::string id = std::string("prop-") + mode + "-" + std::to_string(::getpid());
    std::string bundle =
        make_bundle({"sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo > /root-mount; echo first > /who"},
                    [&](json &c) { c["linux"]["rootfsPropagation"] = mode; });
    ASSERT_GT(create(bundle, id), 0);
    json changed = default_config({"sh", "-c", "echo second > /who"});
    changed["linux"]["rootfsPropagation"] = "private";
    changed["process"]["env"] = {"CHANGED=1"};
    write_config(bundle, changed);
    ASSERT_TRUE(bh({"start", id}).ok());
    ASSERT_EQ(wait_for_status(id, "stopped"), "stopped");
    EXPECT_EQ(read_file(rootfs(bundle) + "/who"), "first\n");
    std::string mount = read_file(rootfs(bundle) + "/root-mount");
    std::string m = mode[0] == 'r' && mode[1] != 'e' ? mode + 1 : mode;
    if (m == "shared")
      EXPECT_TRUE(contains(mount, " shared:")) << mount;
    else if (m == "slave") // "master:N" only when the host's own mount is shared
      EXPECT_FALSE(contains(mount, " shared:")) << mount;
    else if (m == "unbindable")
      EXPECT_TRUE(contains(mount, " unbindable")) << mount;
    else
      EXPECT_FALSE(contains(mount, " shared:") || contains(mount, " master:")) << mount;
    ASSERT_TRUE(bh({"delete", id}).ok());
  }
}

TEST_F(RootfsParity, ContainerWithoutAMountNamespaceSharesOursInItsRootfs) {
  auto no_mount_ns = [](json &c) {
    auto &ns = c["linux"]["namespaces"];
    ns.erase(std::remove_if(ns.begin(), ns.end(), [](const json &n) { return n["type"] == "mount"; }),
             ns.end());
  };
  std::string id = "nomntns-" + std::to_string(::getpid());
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    no_mount_ns(c);
    c["mounts"] = json::array();
    c["linux"]["maskedPaths"] = json::array();
    c["linux"]["readonlyPaths"] = json::array();
  });
  ASSERT_TRUE(write_file(rootfs(bundle) + "/marker", "in-rootfs\n"));
  pid_t pid = create_and_start(bundle, id);
  ASSERT_GT(pid, 0);
  char ours[128] = {}, theirs[128] = {};
  ASSERT_GT(::readlink("/proc/self/ns/mnt", ours, sizeof ours - 1), 0);
  ASSERT_GT(::readlink(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), theirs, sizeof theirs - 1), 0);
  EXPECT_STREQ(theirs, ours) << "not our mount namespace";
  char root[4096] = {};
  ASSERT_GT(::readlink(("/proc/" + std::to_string(pid) + "/root").c_str(), root, sizeof root - 1), 0);
  EXPECT_EQ(std::string(root), rootfs(bundle));
  auto r = bh({"exec", id, "cat", "/marker"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "in-rootfs\n") << r;
  EXPECT_TRUE(no_new_mounts());

  // What would have to mount into the shared namespace is refused by name.
  std::string bad = make_bundle({"true"}, no_mount_ns);
  auto refused = bh({"run", "--bundle", bad, id + "-bad"});
  EXPECT_TRUE(failed_cleanly(refused, "mounts: 6 entries to mount, but the container has no mount namespace",
                             id + "-bad", {pid}));
}

} // namespace
