#include "harness.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bulkhead/runtime.hpp"
#include "daemon/monitor_io.hpp"

namespace bh_mon {

namespace fs = std::filesystem;

namespace {

std::string g_template_root;

std::string make_dtemp(const char *pattern) {
  std::string p = pattern;
  if (!::mkdtemp(p.data()))
    return "";
  return p;
}

struct TemplateCleanup {
  ~TemplateCleanup() {
    if (!g_template_root.empty()) {
      std::error_code ec;
      fs::remove_all(g_template_root, ec);
    }
  }
} g_cleanup;

bool write(const std::string &path, const std::string &text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

std::string memfd_text(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  ::lseek(fd, 0, SEEK_SET);
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

} // namespace

std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool path_exists(const std::string &path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> mounts_containing(const std::string &needle) {
  std::vector<std::string> out;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos)
      out.push_back(line);
  return out;
}

bool has_memory_controller() {
  std::istringstream in(read_file("/sys/fs/cgroup/cgroup.controllers"));
  std::string c;
  while (in >> c)
    if (c == "memory")
      return true;
  return false;
}

const std::string &busybox_template() {
  static std::string rootfs;
  if (!rootfs.empty())
    return rootfs;
  g_template_root = make_dtemp("/tmp/bulkhead-mtest-template-XXXXXX");
  if (g_template_root.empty())
    throw std::runtime_error("mkdtemp for the busybox template failed");
  ::chmod(g_template_root.c_str(), 0755);
  std::string r = g_template_root + "/rootfs";
  for (const char *d : {"", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/tmp", "/run", "/root"})
    fs::create_directory(r + d);
  ::chmod((r + "/tmp").c_str(), 01777);
  fs::copy_file("/usr/bin/busybox", r + "/bin/busybox");
  ::chmod((r + "/bin/busybox").c_str(), 0755);
  FILE *list = ::popen("/usr/bin/busybox --list", "r");
  if (!list)
    throw std::runtime_error("busybox --list failed");
  char applet[256];
  while (std::fgets(applet, sizeof applet, list)) {
    std::string a(applet);
    while (!a.empty() && (a.back() == '\n' || a.back() == '\r'))
      a.pop_back();
    if (a.empty() || a == "busybox" || a.find('/') != std::string::npos)
      continue;
    fs::create_symlink("busybox", r + "/bin/" + a);
  }
  ::pclose(list);
  fs::create_symlink("/bin/busybox", r + "/sbin/init");
  write(r + "/etc/inittab", "::sysinit:/bin/echo bulkhead-boot-ok\n"
                            "::respawn:/bin/sh\n"
                            "::ctrlaltdel:/bin/true\n"
                            "::shutdown:/bin/echo bulkhead-shutdown\n");
  write(r + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  write(r + "/etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
  rootfs = r;
  return rootfs;
}

void MonitorTest::SetUp() {
  dir_ = make_dtemp("/tmp/bulkhead-mtest-XXXXXX");
  oci_root_ = make_dtemp("/run/bulkhead-mtest-XXXXXX");
  ASSERT_FALSE(dir_.empty());
  ASSERT_FALSE(oci_root_.empty());
  name_ = "m" + dir_.substr(dir_.size() - 6);
  for (auto &c : name_)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  cgroups_path_ = "/bulkhead-mtest/" + name_;
  busybox_template();
}

void MonitorTest::TearDown() {
  if (monitor_running()) {
    kill_init(SIGKILL);
    if (!wait_monitor(15s)) {
      ::kill(monitor_pid_, SIGKILL);
      wait_monitor(5s);
    }
  }
  bulkhead::RuntimeOptions ro;
  ro.root = oci_root_;
  (void)bulkhead::Runtime(ro).remove(name_, bulkhead::DeleteOptions{true});
  ::umount2(rootfs().c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove_all(oci_root_, ec);
  for (const char *mount : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    ::rmdir((std::string(mount) + "/bulkhead-mtest").c_str());
}

json MonitorTest::launch_line(const std::function<void(bulkhead::daemon::ContainerConfig &)> &adjust) {
  bulkhead::daemon::ContainerConfig c;
  c.name = name_;
  c.template_name = "busybox";
  c.hostname = name_;
  if (adjust)
    adjust(c);
  return json{{"config", bulkhead::daemon::to_json(c)},
              {"lower", busybox_template()},
              {"upper", dir_ + "/upper"},
              {"work", dir_ + "/work"},
              {"rootfs", rootfs()},
              {"bundle", bundle()},
              {"oci_root", oci_root_},
              {"cgroups_path", cgroups_path_},
              {"init_path", "/sbin/init"},
              {"lxcfs_dir", lxcfs_dir_},
              {"socket", socket()},
              {"log", log()},
              {"log_max", 1 << 20},
              {"state_file", state_file()},
              {"exit_file", exit_file()}};
}

json MonitorTest::start_monitor(const json &line) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return nullptr;
  bulkhead::UniqueFd ours(sv[0]), theirs(sv[1]);
  std::string err_path = dir_ + "/monitor.err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = ::open("/dev/null", O_RDWR);
    if (err < 0 || null < 0 || ::dup2(null, 0) < 0 || ::dup2(err, 1) < 0 || ::dup2(err, 2) < 0 ||
        ::dup2(theirs.get(), 3) < 0)
      ::_exit(126);
    ::syscall(SYS_close_range, 4, ~0U, 0);
    ::execl(BULKHEAD_MONITOR_BINARY, "bulkhead-monitor", nullptr);
    ::_exit(127);
  }
  monitor_pid_ = pid;
  theirs.reset();
  if (!bulkhead::daemon::send_line(ours.get(), line.dump()))
    return nullptr;
  auto reply = bulkhead::daemon::read_line(ours.get(), 1 << 16);
  if (!reply)
    return nullptr;
  return json::parse(*reply, nullptr, false);
}

std::optional<int> MonitorTest::wait_monitor(std::chrono::milliseconds timeout) {
  if (monitor_pid_ <= 0)
    return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(monitor_pid_, &st, WNOHANG);
    if (r == monitor_pid_) {
      monitor_pid_ = -1;
      return st;
    }
    if (r < 0)
      return std::nullopt;
    if (std::chrono::steady_clock::now() > deadline)
      return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

bool MonitorTest::monitor_running() const {
  return monitor_pid_ > 0 && ::waitpid(monitor_pid_, nullptr, WNOHANG) == 0;
}

Captured MonitorTest::exec(const std::vector<std::string> &args,
                           const std::function<void(bulkhead::daemon::ExecRequest &)> &tweak,
                           const std::string &stdin_data) {
  bulkhead::daemon::ExecRequest r;
  r.args = args;
  if (tweak)
    tweak(r);
  bulkhead::UniqueFd out(static_cast<int>(::syscall(SYS_memfd_create, "out", MFD_CLOEXEC)));
  bulkhead::UniqueFd err(static_cast<int>(::syscall(SYS_memfd_create, "err", MFD_CLOEXEC)));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    return {};
  bulkhead::UniqueFd in_r(p[0]), in_w(p[1]);
  (void)!::write(in_w.get(), stdin_data.data(), stdin_data.size());
  in_w.reset();
  Captured c;
  auto code = bulkhead::daemon::monitor_exec(socket(), r, in_r.get(), out.get(), err.get());
  if (code)
    c.code = *code;
  else
    c.error = code.error().text();
  c.out = memfd_text(out.get());
  c.err = memfd_text(err.get());
  return c;
}

void MonitorTest::kill_init(int sig) {
  bulkhead::RuntimeOptions ro;
  ro.root = oci_root_;
  (void)bulkhead::Runtime(ro).kill(name_, sig, false);
}

} // namespace bh_mon
