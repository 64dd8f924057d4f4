// Unprivileged system containers (issue 15 item 2, docs/unprivileged.md) on this host: each gets
// its own 65536-id range, root inside is the range's base outside, the template stays one copy
// (idmapped lower layer), ranges survive a daemon SIGKILL, a destroy frees its range, and a pool
// that is exhausted or absent is a clear error that leaves nothing behind.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fstream>

#include "daemon_fixture.hpp"

namespace bh_test {

namespace {

struct stat stat_of(const std::string &path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

// The total size and count of the files below `dir` (du -s --apparent-size, in bytes; -x stays on
// its filesystem, so a mounted rootfs below it is not counted).
std::string tree_size(const std::string &dir) {
  auto r = run_command({"sh", "-c", "du -sxb \"$0\" | cut -f1; find \"$0\" -xdev | wc -l", dir});
  EXPECT_EQ(r.exit_code, 0) << r;
  return r.out;
}

} // namespace

class UnprivilegedTest : public DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    // The range's root must reach its rootfs below the test's directory (bulkheadd refuses an
    // unprivileged create otherwise, as BadDirectoryModeIsRefused checks).
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  }
  json record(const std::string &name) {
    return json::parse(read_file(root_ + "/containers/" + name + "/container.json"));
  }
};

TEST_F(UnprivilegedTest, RootInsideIsTheRangeOutsideAndTheTemplateStaysOneCopy) {
  // Two ranges of 65536: 100000.. and 165536..
  start_daemon({"--id-range", "100000:131072"});
  import_busybox();
  const std::string tmpl = root_ + "/templates/busybox/rootfs";
  auto tmpl_before = tree_size(tmpl);
  auto busybox_before = stat_of(tmpl + "/bin/busybox");

  auto r = ctl({"create", "u1", "--template", "busybox", "--unprivileged"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"create", "u2", "--template", "busybox", "--unprivileged"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"create", "p1", "--template", "busybox", "--privileged"});
  ASSERT_TRUE(r.ok()) << r;
  auto i1 = info("u1"), i2 = info("u2");
  EXPECT_EQ(i1["privileged"], false);
  EXPECT_EQ(info("p1")["privileged"], true);
  EXPECT_FALSE(info("p1").contains("idmap"));
  ASSERT_TRUE(i1.contains("idmap")) << i1.dump();
  EXPECT_EQ(i1["idmap"], (json{{"uid", 100000}, {"gid", 100000}, {"size", 65536}}));
  EXPECT_EQ(i2["idmap"], (json{{"uid", 165536}, {"gid", 165536}, {"size", 65536}}));
  // Persisted in the record, which is what a restarted daemon reads.
  EXPECT_EQ(record("u1")["config"]["idmap"], i1["idmap"]);
  // The ranges do not overlap.
  uint32_t b1 = i1["idmap"]["uid"], b2 = i2["idmap"]["uid"];
  EXPECT_TRUE(b1 + 65536 <= b2 || b2 + 65536 <= b1);

  // Exhausted: a clear error, and no trace of the container.
  r = ctl({"create", "u3", "--template", "busybox", "--unprivileged"});
  EXPECT_FALSE(r.ok()) << r;
  EXPECT_TRUE(contains(r.err, "no free id range")) << r;
  EXPECT_TRUE(contains(r.err, "--id-range 100000:131072")) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/u3"));
  EXPECT_FALSE(info("u1").is_null());
  r = ctl({"list", "--json"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(json::parse(r.out).size(), 3u) << r.out;

  ASSERT_TRUE(ctl({"start", "u1"}).ok());
  ASSERT_TRUE(ctl({"start", "p1"}).ok());
  pid_t pid = info("u1")["pid"].get<pid_t>();
  ASSERT_GT(pid, 0);
  std::string proc = "/proc/" + std::to_string(pid);
  // The kernel's view: uid 0 inside is 100000 outside, and init runs as 100000 on the host.
  EXPECT_EQ(split_words(read_file(proc + "/uid_map")), (std::vector<std::string>{"0", "100000", "65536"}));
  EXPECT_EQ(split_words(read_file(proc + "/gid_map")), (std::vector<std::string>{"0", "100000", "65536"}));
  EXPECT_EQ(stat_of(proc).st_uid, 100000u);
  EXPECT_EQ(stat_of(proc).st_gid, 100000u);
  // The privileged one is still root: the identity map.
  pid_t ppid = info("p1")["pid"].get<pid_t>();
  EXPECT_EQ(split_words(read_file("/proc/" + std::to_string(ppid) + "/uid_map")),
            (std::vector<std::string>{"0", "0", "4294967295"}));
  EXPECT_EQ(stat_of("/proc/" + std::to_string(ppid)).st_uid, 0u);

  // Inside: root, and the template's files are root's (idmapped; without the idmap they would be
  // the overflow uid 65534).
  r = ctl({"exec", "u1", "--", "id", "-u"});
  EXPECT_EQ(trim(r.out), "0") << r;
  r = ctl({"exec", "u1", "--", "stat", "-c", "%u:%g", "/bin/busybox", "/etc", "/"});
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"0:0", "0:0", "0:0"})) << r;
  // Root inside writes a new file, one into a template directory (a copy-up of /etc) and a chown
  // to a user inside.
  r = ctl({"exec", "u1", "--", "sh", "-c",
           "echo new > /created && echo x > /etc/created && touch /owned && chown 1000:1000 /owned"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string upper = root_ + "/containers/u1/disk/upper";
  EXPECT_EQ(stat_of(upper).st_uid, 100000u);
  EXPECT_EQ(stat_of(upper + "/created").st_uid, 100000u);
  EXPECT_EQ(stat_of(upper + "/created").st_gid, 100000u);
  EXPECT_EQ(stat_of(upper + "/etc").st_uid, 100000u);
  EXPECT_EQ(stat_of(upper + "/etc/created").st_uid, 100000u);
  EXPECT_EQ(stat_of(upper + "/owned").st_uid, 101000u);
  EXPECT_EQ(stat_of(upper + "/owned").st_gid, 101000u);

  // One copy of the template: the container reads the template's own inode, nothing of the
  // template was copied into its layer, and the template is unchanged (size, file count, owner).
  auto seen = stat_of(proc + "/root/bin/busybox");
  EXPECT_EQ(seen.st_ino, busybox_before.st_ino);
  EXPECT_EQ(seen.st_size, busybox_before.st_size);
  EXPECT_FALSE(path_exists(upper + "/bin"));
  EXPECT_FALSE(path_exists(upper + "/bin/busybox"));
  auto busybox_after = stat_of(tmpl + "/bin/busybox");
  EXPECT_EQ(busybox_after.st_ino, busybox_before.st_ino);
  EXPECT_EQ(busybox_after.st_uid, 0u);
  EXPECT_EQ(stat_of(tmpl + "/etc").st_uid, 0u);
  EXPECT_EQ(tree_size(tmpl), tmpl_before);
  auto usage = tree_size(root_ + "/containers/u1/disk");
  EXPECT_LT(std::stoull(usage), 1u << 20) << usage; // the busybox tree alone is > 1 MiB

  // The daemon dies (SIGKILL) and comes back: the ranges are the same and still taken.
  kill_daemon();
  start_daemon({"--id-range", "100000:131072"});
  EXPECT_EQ(info("u1")["idmap"], i1["idmap"]);
  EXPECT_EQ(info("u2")["idmap"], i2["idmap"]);
  EXPECT_EQ(info("u1")["pid"], pid);
  r = ctl({"create", "u3", "--template", "busybox", "--unprivileged"});
  EXPECT_TRUE(contains(r.err, "no free id range")) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/u3"));

  // A destroy frees its range for the next container.
  ASSERT_TRUE(ctl({"destroy", "u2"}).ok());
  r = ctl({"create", "u3", "--template", "busybox", "--unprivileged", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("u3")["idmap"], i2["idmap"]);
  pid_t pid3 = info("u3")["pid"].get<pid_t>();
  EXPECT_EQ(stat_of("/proc/" + std::to_string(pid3)).st_uid, 165536u);

  // Stop and destroy leave nothing mounted (TearDown checks the mounts).
  ASSERT_TRUE(ctl({"stop", "u1", "--timeout", "5"}).ok());
  ASSERT_TRUE(ctl({"destroy", "u1"}).ok());
  EXPECT_FALSE(path_exists(root_ + "/containers/u1"));
}

TEST_F(UnprivilegedTest, RangesComeFromRootsSubordinateIds) {
  // As /etc/subuid would say it: root by name in one file, by uid in the other; another user's
  // entry is not ours.
  write_file(dir_ + "/subuid", "alice:100000:65536\nroot:300000:65536\n");
  write_file(dir_ + "/subgid", "# comment\n0:400000:65536\n");
  start_daemon({"--subuid-file", dir_ + "/subuid", "--subgid-file", dir_ + "/subgid"});
  import_busybox();
  auto r = ctl({"create", "s1", "--template", "busybox", "--unprivileged", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("s1")["idmap"], (json{{"uid", 300000}, {"gid", 400000}, {"size", 65536}}));
  pid_t pid = info("s1")["pid"].get<pid_t>();
  EXPECT_EQ(split_words(read_file("/proc/" + std::to_string(pid) + "/gid_map")),
            (std::vector<std::string>{"0", "400000", "65536"}));
  r = ctl({"create", "s2", "--template", "busybox", "--unprivileged"});
  EXPECT_TRUE(contains(r.err, "no free id range")) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/s2"));
}

// A create that says neither is unprivileged; root without subordinate ids (as Debian leaves it)
// gets bulkheadd's default pool from 1000000000.
TEST_F(UnprivilegedTest, UnprivilegedByDefaultFromTheDefaultPool) {
  start_daemon(); // the fixture's subuid/subgid files do not exist
  import_busybox();
  auto r = ctl({"create", "d1", "--template", "busybox", "--start"});
  ASSERT_TRUE(r.ok()) << r;
  auto i = info("d1");
  EXPECT_EQ(i["privileged"], false);
  EXPECT_EQ(i["idmap"], (json{{"uid", 1000000000}, {"gid", 1000000000}, {"size", 65536}}));
  pid_t pid = i["pid"].get<pid_t>();
  EXPECT_EQ(stat_of("/proc/" + std::to_string(pid)).st_uid, 1000000000u);
  EXPECT_TRUE(contains(ctl({"info", "d1"}).out, "unprivileged")) << ctl({"info", "d1"});
  r = ctl({"create", "d2", "--template", "busybox"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("d2")["idmap"]["uid"], 1000065536);
  r = ctl({"create", "p1", "--template", "busybox", "--privileged"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("p1")["privileged"], true);
  EXPECT_FALSE(info("p1").contains("idmap"));
}

// --privileged-default keeps the old default.
TEST_F(UnprivilegedTest, PrivilegedDefaultFlag) {
  start_daemon({"--privileged-default"});
  import_busybox();
  ASSERT_TRUE(ctl({"create", "p1", "--template", "busybox"}).ok());
  EXPECT_EQ(info("p1")["privileged"], true);
  ASSERT_TRUE(ctl({"create", "u1", "--template", "busybox", "--unprivileged"}).ok());
  EXPECT_EQ(info("u1")["idmap"]["uid"], 1000000000);
}

// The default pool overlapping another user's subordinate ids is not used: a clear error, nothing made.
TEST_F(UnprivilegedTest, NoRangeAnywhereIsAClearErrorAndLeavesNothing) {
  write_file(dir_ + "/subuid", "alice:1000065536:65536\n");
  start_daemon({"--subuid-file", dir_ + "/subuid", "--subgid-file", dir_ + "/none"});
  import_busybox();
  auto r = ctl({"create", "n1", "--template", "busybox", "--unprivileged"});
  EXPECT_FALSE(r.ok()) << r;
  EXPECT_TRUE(contains(r.err, "root has no range")) << r;
  EXPECT_TRUE(contains(r.err, "overlaps the entry 1000065536:65536 of " + dir_ + "/subuid")) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/n1"));
  r = ctl({"list", "--json"});
  EXPECT_EQ(json::parse(r.out).size(), 0u) << r;
  // A privileged container needs no range.
  r = ctl({"create", "n1", "--template", "busybox", "--privileged"});
  EXPECT_TRUE(r.ok()) << r;
  // Both flags at once are refused by bulkheadctl; the API refuses both fields too.
  r = ctl({"create", "n2", "--template", "busybox", "--privileged", "--unprivileged"});
  EXPECT_FALSE(r.ok()) << r;
  auto h = http(
      "POST", "/1.0/containers",
      json{{"name", "n2"}, {"template", "busybox"}, {"privileged", true}, {"unprivileged", true}}.dump());
  EXPECT_EQ(h.status, 400) << h.body.dump();
  EXPECT_FALSE(path_exists(root_ + "/containers/n2"));
}

// A monitor killed between mounting the idmapped template on <bundle>/lower and the overlay
// leaves that mount: destroy must take it off, never empty the template through it; and any other
// mount below the container's directory makes destroy refuse rather than remove through it.
TEST_F(UnprivilegedTest, DestroyNeverRemovesThroughAMount) {
  start_daemon({"--id-range", "100000:65536"});
  import_busybox();
  ASSERT_TRUE(ctl({"create", "u1", "--template", "busybox", "--unprivileged"}).ok());
  const std::string tmpl = root_ + "/templates/busybox/rootfs", dir = root_ + "/containers/u1";
  auto before = tree_size(tmpl);
  ASSERT_EQ(::mkdir((dir + "/bundle/lower").c_str(), 0700), 0);
  ASSERT_TRUE(run_command({"mount", "--bind", tmpl, dir + "/bundle/lower"}).ok());
  ASSERT_EQ(::mkdir((dir + "/extra").c_str(), 0700), 0);
  ASSERT_TRUE(run_command({"mount", "-t", "tmpfs", "tmpfs", dir + "/extra"}).ok());
  auto r = ctl({"destroy", "u1"});
  EXPECT_FALSE(r.ok()) << r;
  EXPECT_TRUE(contains(r.err, dir + "/extra is still mounted (tmpfs)")) << r;
  EXPECT_TRUE(path_exists(dir + "/container.json"));
  ASSERT_EQ(::umount2((dir + "/extra").c_str(), MNT_DETACH), 0);
  r = ctl({"destroy", "u1"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_FALSE(path_exists(dir));
  EXPECT_EQ(tree_size(tmpl), before);
  EXPECT_TRUE(path_exists(tmpl + "/bin/busybox"));
}

// A snapshot copies the upper with its owners (the range's ids), and a restore brings them back.
TEST_F(UnprivilegedTest, SnapshotRestoreKeepsTheRangesOwners) {
  start_daemon({"--id-range", "100000:65536"});
  import_busybox();
  ASSERT_TRUE(ctl({"create", "s1", "--template", "busybox", "--unprivileged", "--start"}).ok());
  auto r = ctl({"exec", "s1", "--", "sh", "-c", "echo one > /f && chown 5:5 /f"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_TRUE(ctl({"snapshot", "create", "s1", "snap1"}).ok());
  ASSERT_EQ(ctl({"exec", "s1", "--", "rm", "/f"}).exit_code, 0);
  EXPECT_FALSE(path_exists(root_ + "/containers/s1/disk/upper/f"));
  r = ctl({"snapshot", "restore", "s1", "snap1"});
  ASSERT_TRUE(r.ok()) << r;
  wait_info("s1", [](const json &j) { return j["state"] == "running"; });
  auto st = stat_of(root_ + "/containers/s1/disk/upper/f");
  EXPECT_EQ(st.st_uid, 100005u);
  EXPECT_EQ(st.st_gid, 100005u);
  r = ctl({"exec", "s1", "--", "stat", "-c", "%u:%g", "/f"});
  EXPECT_EQ(trim(r.out), "5:5") << r;
}

// An export carries the files with the range they had; an import gives the container a free range
// of this host and shifts every owner into it (and the root id of a file capability). An exact
// range (the API's "idmap", how a container arriving with its memory keeps its ids) is refused
// when another container holds it or the pool does not contain it, and nothing is left.
TEST_F(UnprivilegedTest, ImportShiftsTheFilesIntoAFreeRange) {
  start_daemon({"--id-range", "100000:196608"});
  import_busybox();
  ASSERT_TRUE(ctl({"create", "u1", "--template", "busybox", "--unprivileged", "--start"}).ok());
  auto r = ctl({"exec", "u1", "--", "sh", "-c", "echo one > /f && echo two > /g && chown 5:7 /g"});
  ASSERT_EQ(r.exit_code, 0) << r;
  // A file capability written inside names the range's root (100000) as its namespace root.
  r = run_command({"setcap", "-n", "100000", "cap_net_raw+ep", root_ + "/containers/u1/disk/upper/f"});
  ASSERT_TRUE(r.ok()) << r;
  const std::string file = dir_ + "/u1.bhx";
  ASSERT_TRUE(ctl({"export", "u1", file}).ok());
  ASSERT_TRUE(ctl({"destroy", "u1", "--force"}).ok());
  ASSERT_TRUE(ctl({"create", "blocker", "--template", "busybox", "--unprivileged"}).ok());
  EXPECT_EQ(info("blocker")["idmap"]["uid"], 100000);

  auto h = http(
      "POST", "/1.0/containers",
      json{{"name", "x1"}, {"template", "busybox"}, {"idmap", {{"uid", 100000}, {"gid", 100000}}}}.dump());
  EXPECT_EQ(h.status, 409) << h.body.dump();
  EXPECT_TRUE(contains(h.body.dump(), "id range uids 100000-165535")) << h.body.dump();
  h = http(
      "POST", "/1.0/containers",
      json{{"name", "x1"}, {"template", "busybox"}, {"idmap", {{"uid", 500000}, {"gid", 500000}}}}.dump());
  EXPECT_GE(h.status, 400) << h.body.dump();
  EXPECT_TRUE(contains(h.body.dump(), "is not inside bulkheadd --id-range")) << h.body.dump();
  EXPECT_FALSE(path_exists(root_ + "/containers/x1"));

  r = ctl({"import", file, "u1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(info("u1")["idmap"], (json{{"uid", 165536}, {"gid", 165536}, {"size", 65536}}));
  const std::string upper = root_ + "/containers/u1/disk/upper";
  EXPECT_EQ(stat_of(upper + "/f").st_uid, 165536u);
  EXPECT_EQ(stat_of(upper + "/g").st_uid, 165541u);
  EXPECT_EQ(stat_of(upper + "/g").st_gid, 165543u);
  r = run_command({"getcap", "-n", upper + "/f"});
  EXPECT_TRUE(contains(r.out, "[rootid=165536]")) << r;
  ASSERT_TRUE(ctl({"start", "u1"}).ok());
  r = ctl({"exec", "u1", "--", "stat", "-c", "%u:%g %n", "/f", "/g"});
  EXPECT_EQ(trim(r.out), "0:0 /f\n5:7 /g") << r;
  EXPECT_EQ(trim(ctl({"exec", "u1", "--", "cat", "/g"}).out), "two");
}

TEST_F(UnprivilegedTest, BadDirectoryModeIsRefused) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  start_daemon({"--id-range", "100000:65536"});
  import_busybox();
  auto r = ctl({"create", "m1", "--template", "busybox", "--unprivileged"});
  EXPECT_FALSE(r.ok()) << r;
  EXPECT_TRUE(contains(r.err, dir_ + " searchable by every uid")) << r;
  EXPECT_FALSE(path_exists(root_ + "/containers/m1"));
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
}

} // namespace bh_test
