// bulkhead-monitor on a busybox system container, on any host (no cgroup controllers needed).
#include <csignal>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <sstream>
#include <thread>

#include "bulkhead/unique_fd.hpp"
#include "harness.hpp"

namespace bh_mon {

namespace {

// Reads from fd until `needle` shows up or the timeout passes; returns what was read.
std::string read_until(int fd, const std::string &needle, std::chrono::milliseconds timeout = 10s) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.find(needle) == std::string::npos) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    struct pollfd p {
      fd, POLLIN, 0
    };
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      break;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Pids of the processes named `comm` below `ancestor` (by their parent links in /proc).
std::vector<pid_t> descendants_named(pid_t ancestor, const std::string &comm) {
  auto parent_of = [](pid_t p) -> pid_t {
    std::string stat = read_file("/proc/" + std::to_string(p) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos)
      return 0;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    return ppid;
  };
  std::vector<pid_t> found;
  DIR *d = ::opendir("/proc");
  while (dirent *e = d ? ::readdir(d) : nullptr) {
    pid_t p = std::atoi(e->d_name);
    if (p <= 0 || read_file("/proc/" + std::to_string(p) + "/comm") != comm + "\n")
      continue;
    for (pid_t up = parent_of(p); up > 1; up = parent_of(up))
      if (up == ancestor) {
        found.push_back(p);
        break;
      }
  }
  if (d)
    ::closedir(d);
  return found;
}

bool wait_for_file(const std::string &path, const std::string &needle,
                   std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(path).find(needle) != std::string::npos)
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

} // namespace

TEST_F(MonitorTest, BootsBusyboxInitAsPid1AndReportsState) {
  json reply = start();
  ASSERT_TRUE(reply.is_object()) << monitor_stderr();
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump() << "\n" << monitor_stderr();
  int pid = reply["pid"].get<int>();
  EXPECT_GT(pid, 0);

  json state = json::parse(read_file(state_file()), nullptr, false);
  ASSERT_TRUE(state.is_object()) << read_file(state_file());
  EXPECT_EQ(state["init_pid"], pid);
  EXPECT_EQ(state["init_start_time"], reply["init_start_time"]);
  EXPECT_EQ(state["monitor_pid"], monitor_pid_);
  EXPECT_GT(state["monitor_start_time"].get<uint64_t>(), 0u);
  EXPECT_GT(state["started_unix"].get<int64_t>(), 1700000000);

  auto status = bulkhead::daemon::monitor_status(socket());
  ASSERT_TRUE(status) << status.error().text();
  EXPECT_EQ((*status)["init_pid"], pid);
  EXPECT_EQ((*status)["monitor_pid"], monitor_pid_);

  // The socket is private to root (and group bulkhead when the host has it).
  struct stat st {};
  ASSERT_EQ(::stat(socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0007, 0u);

  auto cmdline = exec({"cat", "/proc/1/cmdline"});
  EXPECT_EQ(cmdline.code, 0) << cmdline.error << cmdline.err;
  EXPECT_EQ(cmdline.out.rfind("init", 0), 0u) << cmdline.out; // busybox init renames itself "init"
  auto exe = exec({"readlink", "/proc/1/exe"});
  EXPECT_EQ(exe.out, "/bin/busybox\n");
  auto id = exec({"id"});
  EXPECT_EQ(id.code, 0) << id.error << id.err;
  EXPECT_EQ(id.out, "uid=0(root) gid=0(root)\n");
  auto ps = exec({"ps", "-o", "pid,comm"});
  EXPECT_EQ(ps.code, 0) << ps.error << ps.err;
  EXPECT_NE(ps.out.find("    1 init"), std::string::npos) << ps.out;
  auto host = exec({"hostname"});
  EXPECT_EQ(host.out, name_ + "\n");
  auto env = exec({"sh", "-c", "echo $container $TERM $HOME"});
  EXPECT_EQ(env.out, "bulkhead linux /root\n") << env.err;
  EXPECT_TRUE(wait_for_file(log(), "bulkhead-boot-ok")) << read_file(log());
}

TEST_F(MonitorTest, ExecPassesExitStatusStdinAndStderr) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  EXPECT_EQ(exec({"sh", "-c", "exit 7"}).code, 7);
  EXPECT_EQ(exec({"sh", "-c", "kill -9 $$"}).code, 128 + 9);
  auto cat = exec({"sh", "-c", "cat; echo oops >&2"}, {}, "from stdin\n");
  EXPECT_EQ(cat.code, 0);
  EXPECT_EQ(cat.out, "from stdin\n");
  EXPECT_EQ(cat.err, "oops\n");
  auto missing = exec({"/no/such/binary"});
  EXPECT_EQ(missing.code, -1);
  EXPECT_NE(missing.error.find("/no/such/binary"), std::string::npos) << missing.error;
}

TEST_F(MonitorTest, ExecUserCwdEnvAndTty) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  auto nobody = exec({"id"}, [](auto &r) { r.user = "nobody"; });
  EXPECT_EQ(nobody.out, "uid=65534(nobody) gid=65534(nogroup)\n") << nobody.error;
  auto numeric = exec({"id", "-u"}, [](auto &r) { r.user = "1234:5"; });
  EXPECT_EQ(numeric.out, "1234\n") << numeric.error;
  auto unknown = exec({"id"}, [](auto &r) { r.user = "nosuchuser"; });
  EXPECT_NE(unknown.error.find("nosuchuser"), std::string::npos) << unknown.error;
  auto cwd = exec({"sh", "-c", "pwd; echo $FOO"}, [](auto &r) {
    r.cwd = "/tmp";
    r.env = {"FOO=bar"};
  });
  EXPECT_EQ(cwd.out, "/tmp\nbar\n");
  auto tty = exec({"sh", "-c", "tty; stty size"}, [](auto &r) {
    r.tty = true;
    r.rows = 33;
    r.cols = 101;
  });
  EXPECT_EQ(tty.code, 0) << tty.error;
  EXPECT_NE(tty.out.find("/dev/pts/"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("33 101"), std::string::npos) << tty.out;
}

TEST_F(MonitorTest, ConsoleClientsShareTheConsoleAndDetachCleanly) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  auto a = bulkhead::daemon::monitor_console(socket());
  ASSERT_TRUE(a) << a.error().text();
  bulkhead::UniqueFd first(*a);
  auto b = bulkhead::daemon::monitor_console(socket());
  ASSERT_TRUE(b) << b.error().text();
  bulkhead::UniqueFd second(*b);
  std::string cmd = "echo console-$((6*7))\n";
  ASSERT_EQ(::write(first.get(), cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  EXPECT_NE(read_until(first.get(), "console-42").find("console-42"), std::string::npos);
  EXPECT_NE(read_until(second.get(), "console-42").find("console-42"), std::string::npos);
  first.reset();
  second.reset();
  // Detached clients leave the container running and the console flowing into the log.
  EXPECT_EQ(exec({"true"}).code, 0);
  EXPECT_TRUE(wait_for_file(log(), "console-42")) << read_file(log());
}

TEST_F(MonitorTest, KilledInitIsCleanedUpAndExitFileWrittenLast) {
  json reply = start();
  ASSERT_TRUE(reply.value("ok", false)) << monitor_stderr();
  int pid = reply["pid"].get<int>();
  ASSERT_FALSE(mounts_containing(rootfs()).empty());
  // SIGTERM to the monitor is ignored: the container lives on.
  ::kill(monitor_pid_, SIGTERM);
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(monitor_running());
  EXPECT_EQ(exec({"true"}).code, 0);

  kill_init(SIGKILL);
  auto st = wait_monitor();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st << monitor_stderr();
  json exit = json::parse(read_file(exit_file()), nullptr, false);
  ASSERT_TRUE(exit.is_object()) << read_file(exit_file());
  EXPECT_EQ(exit["code"], 137);
  EXPECT_EQ(exit["signal"], 9);
  EXPECT_GT(exit["at"].get<int64_t>(), 1700000000);
  EXPECT_TRUE(mounts_containing(rootfs()).empty());
  EXPECT_FALSE(path_exists(socket()));
  EXPECT_FALSE(path_exists(oci_root_ + "/" + name_));
  EXPECT_FALSE(path_exists("/sys/fs/cgroup" + cgroups_path_));
  EXPECT_FALSE(path_exists("/sys/fs/cgroup/unified" + cgroups_path_));
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST_F(MonitorTest, PoweroffFromBusyboxInitEndsWithSigint) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  ASSERT_TRUE(wait_for_file(log(), "bulkhead-boot-ok")) << read_file(log());
  kill_init(SIGUSR2); // busybox init: poweroff
  auto st = wait_monitor(30s);
  ASSERT_TRUE(st.has_value());
  json exit = json::parse(read_file(exit_file()), nullptr, false);
  ASSERT_TRUE(exit.is_object()) << read_file(exit_file()) << monitor_stderr();
  // reboot(RB_POWER_OFF) in a pid namespace kills its init with SIGINT.
  EXPECT_EQ(exit["signal"], SIGINT);
  EXPECT_EQ(exit["code"], 128 + SIGINT);
  EXPECT_NE(read_file(log()).find("bulkhead-shutdown"), std::string::npos) << read_file(log());
  EXPECT_TRUE(mounts_containing(rootfs()).empty());
}

TEST_F(MonitorTest, FailedStartUndoesEverything) {
  json reply = start([](auto &c) { c.init = {"/no/such/init"}; });
  ASSERT_TRUE(reply.is_object()) << monitor_stderr();
  EXPECT_FALSE(reply.value("ok", true));
  EXPECT_NE(reply.value("error", "").find("/no/such/init"), std::string::npos) << reply.dump();
  auto st = wait_monitor();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 1);
  EXPECT_TRUE(mounts_containing(rootfs()).empty());
  EXPECT_FALSE(path_exists(socket()));
  EXPECT_FALSE(path_exists(state_file()));
  EXPECT_FALSE(path_exists(oci_root_ + "/" + name_));
}

TEST_F(MonitorTest, BadLaunchLineIsRefusedByName) {
  json line = launch_line();
  line["surprise"] = 1;
  json reply = start_monitor(line);
  ASSERT_TRUE(reply.is_object());
  EXPECT_FALSE(reply.value("ok", true));
  EXPECT_NE(reply.value("error", "").find("surprise"), std::string::npos) << reply.dump();
  line = launch_line();
  line["upper"] = "relative/path";
  reply = start_monitor(line);
  EXPECT_NE(reply.value("error", "").find("upper"), std::string::npos) << reply.dump();
}

TEST_F(MonitorTest, UnprivilegedPeerIsRefused) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  // The socket is 0660 root:bulkhead; open it up so the refusal comes from SO_PEERCRED.
  ::chmod(socket().c_str(), 0666);
  ::chmod(dir_.c_str(), 0711);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    if (::setgroups(0, nullptr) < 0 || ::setgid(65534) < 0 || ::setuid(65534) < 0)
      ::_exit(2);
    auto s = bulkhead::daemon::monitor_status(socket());
    std::string text = s ? "allowed" : s.error().text();
    (void)!::write(p[1], text.data(), text.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string got = read_until(p[0], "\n", 5s);
  ::close(p[0]);
  ::waitpid(child, nullptr, 0);
  EXPECT_NE(got.find("permission denied"), std::string::npos) << got;
}

TEST_F(MonitorTest, UnknownOpAndMalformedRequestsGetErrors) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  bulkhead::daemon::ExecRequest r;
  auto empty = bulkhead::daemon::monitor_exec(socket(), r, 0, 1, 2);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().text().find("args"), std::string::npos) << empty.error().text();
  // The monitor keeps serving after bad requests.
  EXPECT_EQ(exec({"true"}).code, 0);
}

// bulkheadd's two-step dump (MonitorDump): the worker starts CRIU and waits for the go; a daemon
// that drops the checkpoint instead (its freeze or copy failed, or it died) leaves the container
// as it was and no CRIU behind. The dump itself needs the VM's kernel (tests/migration).
TEST_F(MonitorTest, ACheckpointDroppedBeforeItsGoLeavesTheContainerUntouched) {
  if (::access("/usr/sbin/criu", X_OK) != 0)
    GTEST_SKIP() << "criu is not installed";
  json r = start();
  ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  int pid = r["pid"].get<int>();
  std::string images = dir_ + "/ckpt";
  ASSERT_EQ(::mkdir(images.c_str(), 0700), 0);
  // No wait between the rounds: the drop returns once the worker is gone, and the monitor takes
  // the next checkpoint even when it has not read that worker's exit yet.
  for (int round = 0; round < 3; ++round) {
    {
      auto prepared = bulkhead::daemon::MonitorDump::prepare(socket(), images, true);
      ASSERT_TRUE(prepared) << "round " << round << ": " << prepared.error().text();
      EXPECT_EQ(descendants_named(monitor_pid_, "criu").size(), 1u); // up and waiting
    }
    EXPECT_TRUE(descendants_named(monitor_pid_, "criu").empty()) << "round " << round;
  }
  EXPECT_EQ(::access((images + "/inventory.img").c_str(), F_OK), -1); // nothing was dumped
  auto status = bulkhead::daemon::monitor_status(socket());
  ASSERT_TRUE(status) << status.error().text();
  EXPECT_EQ((*status)["init_pid"], pid);
  EXPECT_EQ(exec({"true"}).code, 0); // running, not frozen
}

// The replicator's worker started ahead (MonitorDump::request): asked for without waiting, ready
// later, its images named at the go. A go naming what is not there is refused by name before CRIU
// touches the container; the worker and its CRIU go.
TEST_F(MonitorTest, AWorkerStartedAheadTakesItsImagesFromTheGo) {
  if (::access("/usr/sbin/criu", X_OK) != 0)
    GTEST_SKIP() << "criu is not installed";
  json r = start();
  ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  std::string placeholder = dir_ + "/replication";
  ASSERT_EQ(::mkdir(placeholder.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((placeholder + "/img-2").c_str(), 0700), 0);
  struct Case {
    std::string images, parent, says;
  };
  for (const Case &c : {Case{dir_ + "/nowhere", "", dir_ + "/nowhere"}, Case{"relative/img", "", "absolute"},
                        Case{placeholder + "/img-2", "../img-1", placeholder + "/img-2/../img-1"}}) {
    auto ahead = bulkhead::daemon::MonitorDump::request(socket(), placeholder, false);
    ASSERT_TRUE(ahead) << ahead.error().text();
    ASSERT_TRUE(ahead->ready()) << c.images;
    EXPECT_EQ(descendants_named(monitor_pid_, "criu").size(), 1u) << c.images;
    auto dumped = ahead->dump(c.images, c.parent);
    ASSERT_FALSE(dumped) << c.images;
    EXPECT_NE(dumped.error().text().find(c.says), std::string::npos) << dumped.error().text();
    EXPECT_TRUE(descendants_named(monitor_pid_, "criu").empty()) << c.images;
  }
  EXPECT_EQ(::access((placeholder + "/img-2/inventory.img").c_str(), F_OK), -1);
  EXPECT_EQ(::access((placeholder + "/inventory.img").c_str(), F_OK), -1);
  EXPECT_EQ(exec({"true"}).code, 0); // running, not frozen
}

TEST_F(MonitorTest, ConsoleLogIsBoundedByRotation) {
  json line = launch_line();
  line["log_max"] = 4096;
  ASSERT_TRUE(start_monitor(line).value("ok", false)) << monitor_stderr();
  auto r = exec(
      {"sh", "-c", "i=0; while [ $i -lt 400 ]; do echo console-line-$i; i=$((i+1)); done > /dev/console"});
  EXPECT_EQ(r.code, 0) << r.error << r.err;
  ASSERT_TRUE(wait_for_file(log(), "console-line-399") || wait_for_file(log() + ".1", "console-line-399"));
  struct stat st {};
  ASSERT_EQ(::stat(log().c_str(), &st), 0);
  EXPECT_LE(st.st_size, 4096);
  ASSERT_EQ(::stat((log() + ".1").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 4096);
}

} // namespace bh_mon

namespace bh_mon {

namespace {

// kB value of `key` in /proc/PID/smaps_rollup, -1 when absent.
long smaps_kb(pid_t pid, const std::string &key) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/smaps_rollup");
  auto at = text.find("\n" + key + ":");
  if (at == std::string::npos)
    return -1;
  return std::strtol(text.c_str() + at + key.size() + 2, nullptr, 10);
}

} // namespace

TEST_F(MonitorTest, IdleMonitorMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's shadow memory makes RSS meaningless";
#endif
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  EXPECT_EQ(exec({"true"}).code, 0); // the loop has served a request, as in real life
  std::this_thread::sleep_for(300ms);
  long rss = smaps_kb(monitor_pid_, "Rss"), pss = smaps_kb(monitor_pid_, "Pss");
  long dirty = smaps_kb(monitor_pid_, "Private_Dirty");
  RecordProperty("rss_kb", std::to_string(rss));
  RecordProperty("pss_kb", std::to_string(pss));
  RecordProperty("private_dirty_kb", std::to_string(dirty));
  std::printf("idle monitor: Rss %ld kB, Pss %ld kB, Private_Dirty %ld kB\n", rss, pss, dirty);
  // What each further monitor adds is its dirty pages (the binary's text is shared page cache).
  EXPECT_GT(dirty, 0);
  EXPECT_LE(dirty, 160);
}

TEST_F(MonitorTest, ContainerOwnsItsCgroupSubtree) {
  {
    json r = start();
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  // What systemd does at boot: a child cgroup of its own, and processes moved into it.
  auto sub = exec({"sh", "-c",
                   "mkdir /sys/fs/cgroup/init.scope && echo 1 > /sys/fs/cgroup/init.scope/cgroup.procs "
                   "&& grep ^0:: /proc/1/cgroup"});
  EXPECT_EQ(sub.code, 0) << sub.error << sub.err;
  EXPECT_EQ(sub.out, "0::/init.scope\n"); // the v2 line (a hybrid host lists v1 ones too)
  kill_init(SIGKILL);
  ASSERT_TRUE(wait_monitor().has_value());
  EXPECT_FALSE(path_exists("/sys/fs/cgroup" + cgroups_path_));
  EXPECT_FALSE(path_exists("/sys/fs/cgroup/unified" + cgroups_path_));
}

} // namespace bh_mon

namespace bh_mon {

namespace {

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return -1;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14)
      utime = std::stol(field);
    if (i == 15)
      stime = std::stol(field);
  }
  return utime + stime;
}

} // namespace

TEST_F(MonitorTest, ContainerThatClosesItsConsoleDoesNotMakeTheMonitorSpin) {
  {
    json r = start([](auto &c) {
      c.init = {"/bin/sh", "-c", "exec </dev/null >/dev/null 2>&1; exec sleep 1000"};
    });
    ASSERT_TRUE(r.value("ok", false)) << r.dump() << "\n" << monitor_stderr();
  }
  std::this_thread::sleep_for(300ms);
  long before = cpu_ticks(monitor_pid_);
  std::this_thread::sleep_for(1s);
  EXPECT_LE(cpu_ticks(monitor_pid_) - before, 2);
  // The console still works for whoever opens it later.
  auto echo = exec({"sh", "-c", "echo late-console-output > /dev/console"});
  EXPECT_EQ(echo.code, 0) << echo.error;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (read_file(log()).find("late-console-output") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(read_file(log()).find("late-console-output"), std::string::npos);
}

} // namespace bh_mon

namespace bh_mon {

TEST_F(MonitorTest, LimitsWithoutControllersFailByName) {
  if (has_memory_controller())
    GTEST_SKIP() << "this host has a memory controller (MonitorVmTest covers limits)";
  json r = start([](auto &c) { c.limits.memory_bytes = 256ull << 20; });
  ASSERT_TRUE(r.is_object()) << monitor_stderr();
  EXPECT_FALSE(r.value("ok", true));
  std::printf("start with memory.max on a host without controllers: %s\n", r.value("error", "").c_str());
  EXPECT_NE(r.value("error", "").find("memory"), std::string::npos) << r.dump();
  ASSERT_TRUE(wait_monitor().has_value());
  EXPECT_TRUE(mounts_containing(rootfs()).empty());
  EXPECT_FALSE(path_exists(oci_root_ + "/" + name_));
}

} // namespace bh_mon
