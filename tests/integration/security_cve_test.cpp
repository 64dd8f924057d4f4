// Regression tests for container-escape CVEs of other runtimes, each reproducing the attack and
// asserting on host state (file contents, host mounts, host directories, /proc of the host).
#include "harness.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

using namespace bh_test;
namespace fs = std::filesystem;

namespace {

class SecurityCveTest : public BulkheadTest {
protected:
  static void drop_mounts(json &c, std::initializer_list<const char *> destinations) {
    json kept = json::array();
    for (auto &m : c["mounts"]) {
      bool drop = false;
      for (const char *d : destinations)
        drop |= m["destination"] == d;
      if (!drop)
        kept.push_back(m);
    }
    c["mounts"] = kept;
  }
  static std::vector<std::string> dir_entries(const std::string &dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(dir, ec))
      out.push_back(e.path().filename());
    return out;
  }
  static std::string status_field(const std::string &status, const std::string &key) {
    for (const auto &l : split_lines(status))
      if (l.rfind(key + ":", 0) == 0)
        return trim(l.substr(key.size() + 1));
    return "";
  }
};

// CVE-2019-5736: a container process opens /proc/<pid>/exe of a runtime process (here any
// process running our binary, found through /proc/*/cmdline in a shared pid namespace) and writes
// the host binary once it is no longer busy. We run a private copy so a failure cannot damage the
// build, and compare its bytes afterwards.
TEST_F(SecurityCveTest, CVE_2019_5736_HostBinaryCannotBeOverwritten) {
  std::string copy = tmp() + "/bulkhead-copy";
  fs::copy_file(runtime_path(), copy);
  ::chmod(copy.c_str(), 0755);
  const std::string before = read_file(copy);
  ASSERT_FALSE(before.empty());

  const std::string attack = "for i in $(seq 100); do\n"
                             "  for d in /proc/[0-9]*; do\n"
                             "    grep -q bulkhead-copy $d/cmdline 2>/dev/null || continue\n"
                             "    ( exec 3<$d/exe && echo opened $d >> /attack.log || exit 0\n"
                             "      while [ -e $d ]; do sleep 0.05; done\n"
                             "      echo pwned > /proc/self/fd/3 && echo wrote >> /attack.log ) &\n"
                             "    echo found >> /attack.log; break 2\n"
                             "  done; sleep 0.05\n"
                             "done\n"
                             "echo pwned > /proc/self/exe 2>/dev/null && echo wrote-self >> /attack.log\n"
                             "wait; echo done >> /attack.log; sleep 30\n";
  std::string attacker = make_bundle({"sh", "-c", attack}, [](json &c) {
    json ns = json::array();
    for (auto &n : c["linux"]["namespaces"])
      if (n["type"] != "pid")
        ns.push_back(n);
    c["linux"]["namespaces"] = ns; // sees every host process
  });
  ASSERT_GT(create_and_start(attacker, "attacker"), 0);
  std::string victim = make_bundle({"sleep", "1"});
  auto r = run_command({copy, "--root", root(), "run", "--bundle", victim, "victim"});
  EXPECT_EQ(r.exit_code, 0) << r;
  std::string log;
  for (int i = 0; i < 100 && !contains(log = read_file(rootfs(attacker) + "/attack.log"), "done"); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(contains(log, "found")) << "the attacker never saw the runtime process: " << log;
  EXPECT_FALSE(contains(log, "wrote")) << log;
  EXPECT_TRUE(read_file(copy) == before) << "the host binary was modified; attack log: " << log;
  (void)bh({"delete", "--force", "attacker"});
}

// CVE-2024-21626: a leaked host directory fd used as process.cwd puts the process outside its root.
TEST_F(SecurityCveTest, CVE_2024_21626_CwdThroughFdFails) {
  std::string marker = "cve-2024-21626-" + std::to_string(::getpid());
  for (int fd = 3; fd <= 9; ++fd) {
    SCOPED_TRACE(fd);
    std::string id = "fdcwd" + std::to_string(fd);
    std::string bundle = make_bundle(
        {"sh", "-c", "echo pwned > ../../../../../../../../tmp/" + marker + "; ls -l /proc/self/fd/"},
        [fd](json &c) { c["process"]["cwd"] = "/proc/self/fd/" + std::to_string(fd); });
    auto r = bh({"run", "--bundle", bundle, id});
    EXPECT_NE(r.exit_code, 0) << r;
    EXPECT_FALSE(path_exists("/tmp/" + marker)) << r;
    EXPECT_FALSE(state_dir_exists(id)) << r;
  }
  // And the process sees only its stdio.
  auto r = run_container({"ls", "/proc/self/fd"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(split_words(r.out), (std::vector<std::string>{"0", "1", "2", "3"})) << r; // 3: ls's own dir fd
}

// CVE-2022-29162 / crun CVE-2022-27650: inheritable capabilities stay empty unless asked for;
// checked from the host's /proc, for root and for a non-root user.
TEST_F(SecurityCveTest, CVE_2022_29162_InheritableCapabilitiesEmpty) {
  for (int uid : {0, 1000}) {
    SCOPED_TRACE(uid);
    std::string id = "inh" + std::to_string(uid);
    std::string bundle = make_bundle({"sleep", "30"}, [uid](json &c) {
      c["process"]["user"] = {{"uid", uid}, {"gid", uid}};
    });
    pid_t pid = create_and_start(bundle, id);
    ASSERT_GT(pid, 0);
    std::string status;
    for (int i = 0; i < 50; ++i) {
      status = read_file("/proc/" + std::to_string(pid) + "/status");
      if (contains(status, "Name:\tsleep"))
        break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(status_field(status, "CapInh"), "0000000000000000") << status;
    EXPECT_EQ(status_field(status, "CapAmb"), "0000000000000000") << status;
    if (uid != 0) {
      EXPECT_EQ(status_field(status, "CapEff"), "0000000000000000") << status;
    }
    (void)bh({"delete", "--force", id});
  }
}

// CVE-2019-16884 / CVE-2023-27561 / CVE-2023-28642: /proc in the image is a symlink.
TEST_F(SecurityCveTest, CVE_2019_16884_ProcSymlinkFailsCreate) {
  std::string bundle = make_bundle({"cat", "/proc/kcore"});
  fs::remove_all(rootfs(bundle) + "/proc");
  fs::create_directory(rootfs(bundle) + "/fakeproc");
  fs::create_directory_symlink("/fakeproc", rootfs(bundle) + "/proc");
  auto r = bh({"run", "--bundle", bundle, "procsym"});
  EXPECT_TRUE(failed_cleanly(r, "is (or goes through) a symlink", "procsym"));
  EXPECT_TRUE(dir_entries(rootfs(bundle) + "/fakeproc").empty());
}

// CVE-2025-52881 (and the over-mounted /proc of CVE-2019-16884): a sysctl write must reach the
// real procfs even when the container's /proc/sys is something else.
TEST_F(SecurityCveTest, CVE_2025_52881_SysctlGoesToVerifiedProcfs) {
  std::string host_hostname = trim(read_file("/proc/sys/kernel/hostname"));
  auto r = run_container({"hostname"}, [](json &c) {
    c["mounts"].push_back({{"destination", "/proc/sys"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
    c["linux"]["sysctl"] = {{"kernel.hostname", "viasysctl"}};
    c["linux"]["readonlyPaths"] = json::array();
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(trim(r.out), "viasysctl") << r;
  EXPECT_EQ(trim(read_file("/proc/sys/kernel/hostname")), host_hostname);
}

// CVE-2025-31133: the image's /dev/null is a symlink to a procfs file, so "masking" would bind a
// writable core_pattern over /proc/kcore.
TEST_F(SecurityCveTest, CVE_2025_31133_DevNullSymlinkIsNotAMaskSource) {
  const std::string core_pattern = read_file("/proc/sys/kernel/core_pattern");
  std::string bundle = make_bundle(
      {"sh", "-c", "for f in /proc/kcore /proc/keys /proc/timer_list; do echo '|/pwn' > $f; done; true"},
      [](json &c) {
        drop_mounts(c, {"/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"});
      });
  fs::create_directories(rootfs(bundle) + "/dev");
  fs::remove(rootfs(bundle) + "/dev/null");
  fs::create_symlink("/proc/sys/kernel/core_pattern", rootfs(bundle) + "/dev/null");
  auto r = bh({"run", "--bundle", bundle, "devnull"});
  EXPECT_TRUE(failed_cleanly(r, "not the null device", "devnull"));
  EXPECT_EQ(read_file("/proc/sys/kernel/core_pattern"), core_pattern);
}

// CVE-2025-52565: /dev/pts in the image is a symlink to a host directory; the devpts mount must
// stay inside the rootfs.
TEST_F(SecurityCveTest, CVE_2025_52565_DevPtsSymlinkStaysInRoot) {
  std::string victim = make_temp_dir("victim");
  std::string bundle = make_bundle({"true"}, [](json &c) {
    drop_mounts(c, {"/dev", "/dev/shm", "/dev/mqueue"});
    c["linux"]["maskedPaths"] = json::array(); // no /dev/null needed: the devpts mount itself runs
  });
  fs::create_directories(rootfs(bundle) + "/dev");
  fs::remove_all(rootfs(bundle) + "/dev/pts");
  fs::create_directory_symlink(victim, rootfs(bundle) + "/dev/pts");
  auto r = bh({"run", "--bundle", bundle, "ptsym"});
  std::cerr << "[ info     ] /dev/pts symlink: exit " << r.exit_code << " " << trim(r.err) << "\n";
  EXPECT_TRUE(dir_entries(victim).empty()) << r;
  EXPECT_TRUE(no_new_mounts()) << r;
  EXPECT_FALSE(state_dir_exists("ptsym"));
}

// An image whose /dev is a symlink to a host path: devices, the /dev tmpfs and its symlinks all
// stay inside the rootfs.
TEST_F(SecurityCveTest, DevSymlinkToHostPathWritesNothingOnHost) {
  std::string hostdev = make_temp_dir("hostdev");
  std::string bundle = make_bundle({"ls", "/dev"});
  fs::remove_all(rootfs(bundle) + "/dev");
  fs::create_directory_symlink(hostdev, rootfs(bundle) + "/dev");
  auto r = bh({"run", "--bundle", bundle, "devsym"});
  std::cerr << "[ info     ] /dev symlink: exit " << r.exit_code << " " << trim(r.err) << "\n";
  EXPECT_TRUE(dir_entries(hostdev).empty()) << r;
  EXPECT_TRUE(no_new_mounts()) << r;
}

// CVE-2021-30465 / CVE-2019-18837: another container swaps a mount destination between a
// directory and a symlink to a host path while we create. Nothing may land on the host.
TEST_F(SecurityCveTest, CVE_2021_30465_RacingSymlinkSwap) {
  std::string victim = make_temp_dir("racevictim");
  std::string bundle = make_bundle({"true"}, [](json &c) {
    for (int i = 0; i < 8; ++i)
      c["mounts"].push_back(
          {{"destination", "/shared/dst" + std::to_string(i)}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  });
  std::string shared = rootfs(bundle) + "/shared";
  fs::create_directories(shared);
  std::atomic<bool> stop{false};
  std::thread racer([&] {
    for (unsigned n = 0; !stop; ++n) {
      std::string p = shared + "/dst" + std::to_string(n % 8), tmp_link = p + ".lnk";
      std::error_code ec;
      fs::remove(tmp_link, ec);
      if (n % 2) {
        fs::create_directory_symlink(victim, tmp_link, ec);
        ::rename(tmp_link.c_str(), p.c_str()); // fails (EISDIR-like) while p is a mount point
      } else {
        fs::remove(p, ec);
        fs::create_directory(p, ec);
      }
    }
  });
  for (int i = 0; i < 15; ++i) {
    auto r = bh({"run", "--bundle", bundle, "race" + std::to_string(i)});
    EXPECT_TRUE(r.exit_code == 0 || !trim(r.err).empty()) << r;
  }
  stop = true;
  racer.join();
  EXPECT_TRUE(dir_entries(victim).empty());
  EXPECT_TRUE(no_new_mounts());
}

} // namespace
