#include "daemon_fixture.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

namespace bh_test {

namespace fs = std::filesystem;

namespace {
std::string mount_point_of_line(const std::string &line) {
  auto words = split_words(line);
  return words.size() > 4 ? words[4] : "";
}
} // namespace

std::string bulkheadd_path() { return BULKHEADD_BINARY; }
std::string bulkheadctl_path() { return BULKHEADCTL_BINARY; }

const std::string &busybox_system_rootfs() {
  // Made once per test process and removed when it exits (the static's destructor): every
  // daemon test binary used to leave a ~2 MB /var/tmp/bhd-busybox-* behind.
  struct TempRootfs {
    std::string dir, rootfs;
    ~TempRootfs() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  // Returned as a prvalue (no copy whose destructor would remove the directory).
  static TempRootfs made = [] {
    char tmpl[] = "/var/tmp/bhd-busybox-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error(std::string("mkdtemp /var/tmp/bhd-busybox-XXXXXX: ") + std::strerror(errno));
    return TempRootfs{tmpl, std::string(tmpl) + "/rootfs"};
  }();
  static const bool built = [] {
    auto r = run_command({"/bin/sh", MAKE_BUSYBOX_ROOTFS, made.rootfs});
    if (!r.ok())
      throw std::runtime_error("make-busybox-rootfs.sh failed: " + r.describe());
    return true;
  }();
  (void)built;
  return made.rootfs;
}

HttpAnswer DaemonTest::http(const std::string &method, const std::string &path, const std::string &body) {
  std::vector<std::string> argv = {
      "curl", "-sS",          "--unix-socket",         socket_, "-X", method, "-o", dir_ + "/body",
      "-w",   "%{http_code}", "http://bulkhead" + path};
  if (!body.empty()) {
    write_file(dir_ + "/request", body);
    argv.insert(argv.end(),
                {"-H", "Content-Type: application/json", "--data-binary", "@" + dir_ + "/request"});
  }
  auto r = run_command(argv);
  HttpAnswer h;
  h.status = std::atoi(r.out.c_str());
  try {
    h.body = json::parse(read_file(dir_ + "/body"));
  } catch (const json::exception &) {
    h.body = read_file(dir_ + "/body");
  }
  return h;
}

void DaemonTest::SetUp() {
  char tmpl[] = "/var/tmp/bhd-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  // Containers are unprivileged by default: their range roots must reach the rootfs below here.
  ::chmod(dir_.c_str(), 0711);
  root_ = dir_ + "/root";
  socket_ = dir_ + "/bulkheadd.sock";
  cgroup_parent_ =
      "/bulkhead-test-" + std::to_string(::getpid()) + "-" + fs::path(dir_).filename().string().substr(9);
  busybox_rootfs_ = busybox_system_rootfs();
  mounts_before_ = mountinfo_snapshot();
}

void DaemonTest::start_daemon(const std::vector<std::string> &extra) {
  std::vector<std::string> argv = {bulkheadd_path(), "--root",          root_,          "--socket",
                                   socket_,          "--cgroup-parent", cgroup_parent_, "--foreground"};
  if (!getenv("BULKHEAD_TEST_LXCFS"))
    argv.push_back("--no-lxcfs");
  // The product's default id pool whatever this machine's /etc/subuid says (no files: root has
  // no range, so bulkheadd's own pool), unless the test names its ids.
  bool names_ids = false;
  for (const auto &a : extra)
    names_ids = names_ids || a == "--id-range" || a == "--subuid-file" || a == "--subgid-file";
  if (!names_ids)
    argv.insert(argv.end(), {"--subuid-file", dir_ + "/no-subuid", "--subgid-file", dir_ + "/no-subgid"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    if (netns_fd_ >= 0 && ::setns(netns_fd_, CLONE_NEWNET) < 0)
      _exit(126);
    int log = ::open((dir_ + "/bulkheadd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char *> cargv;
    for (auto &a : argv)
      cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  daemon_pid_ = pid;
  for (int i = 0; i < 600; ++i) {
    if (path_exists(socket_) && ctl({"list", "--json"}, 10s).ok())
      return;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      daemon_pid_ = -1;
      FAIL() << "bulkheadd exited: " << read_file(dir_ + "/bulkheadd.log");
    }
    std::this_thread::sleep_for(100ms);
  }
  FAIL() << "bulkheadd did not answer on " << socket_ << ": " << read_file(dir_ + "/bulkheadd.log");
}

void DaemonTest::use_private_netns() {
  ASSERT_LT(netns_fd_, 0);
  // unshare on a throwaway thread: the test's own threads keep the host's netns.
  std::thread([this] {
    if (::unshare(CLONE_NEWNET) == 0)
      netns_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  }).join();
  ASSERT_GE(netns_fd_, 0) << "creating a network namespace: " << std::strerror(errno);
  auto r = ip_in_netns({"link", "set", "lo", "up"});
  ASSERT_TRUE(r.ok()) << r;
}

std::string DaemonTest::netns_path() const {
  return netns_fd_ < 0 ? "" : "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(netns_fd_);
}

CommandResult DaemonTest::ip_in_netns(const std::vector<std::string> &args) {
  std::vector<std::string> argv = {"nsenter", "--net=" + netns_path(), "ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

void DaemonTest::kill_daemon() {
  if (daemon_pid_ <= 0)
    return;
  ::kill(daemon_pid_, SIGKILL);
  ::waitpid(daemon_pid_, nullptr, 0);
  daemon_pid_ = -1;
}

CommandResult DaemonTest::ctl(const std::vector<std::string> &args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {bulkheadctl_path(), "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions o;
  o.timeout = timeout;
  return run_command(argv, o);
}

json DaemonTest::info(const std::string &name) {
  auto r = ctl({"info", name, "--json"});
  EXPECT_TRUE(r.ok()) << r;
  try {
    return json::parse(r.out);
  } catch (const json::exception &) {
    ADD_FAILURE() << "info --json printed no JSON: " << r;
    return json::object();
  }
}

json DaemonTest::wait_info(const std::string &name, const std::function<bool(const json &)> &pred,
                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = ctl({"info", name, "--json"});
    if (r.ok()) {
      last = json::parse(r.out);
      if (pred(last))
        return last;
    }
    std::this_thread::sleep_for(100ms);
  }
  ADD_FAILURE() << "timed out waiting on " << name << "; last info: " << last.dump();
  return last;
}

void DaemonTest::import_busybox(const std::string &name) {
  auto r = ctl({"template", "import", name, busybox_rootfs_});
  ASSERT_TRUE(r.ok()) << r;
}

void DaemonTest::TearDown() {
  if (daemon_pid_ <= 0 && path_exists(root_ + "/containers"))
    start_daemon();
  if (daemon_pid_ > 0) {
    auto list = ctl({"list", "--json"});
    if (list.ok()) {
      for (auto &c : json::parse(list.out))
        ctl({"destroy", c["name"].get<std::string>(), "--force"});
    }
    ::kill(daemon_pid_, SIGTERM);
    ::waitpid(daemon_pid_, nullptr, 0);
    daemon_pid_ = -1;
  }
  // Only mounts below this test's directory are its own: other suites may run at the same time
  // (their mounts are neither leaks of ours nor ours to unmount).
  auto leaked = new_mounts(mounts_before_);
  std::erase_if(leaked,
                [&](const std::string &m) { return mount_point_of_line(m).rfind(dir_ + "/", 0) != 0; });
  EXPECT_TRUE(leaked.empty()) << "mounts left behind: " << leaked.size()
                              << " first: " << (leaked.empty() ? "" : leaked[0]);
  for (auto &m : leaked)
    ::umount2(mount_point_of_line(m).c_str(), MNT_DETACH);
  if (HasFailure())
    std::cerr << "--- bulkheadd log\n" << read_file(dir_ + "/bulkheadd.log") << "---\n";
  run_command({"rm", "-rf", dir_});
  if (netns_fd_ >= 0)
    ::close(std::exchange(netns_fd_, -1));
  ::rmdir(("/sys/fs/cgroup" + cgroup_parent_).c_str());
  ::rmdir(("/sys/fs/cgroup/unified" + cgroup_parent_).c_str());
}

} // namespace bh_test
