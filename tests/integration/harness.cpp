#include "harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#ifndef BULKHEAD_BINARY
#define BULKHEAD_BINARY "/work/main/build/cli/bulkhead"
#endif

namespace fs = std::filesystem;

namespace bh_test {

namespace {

// Every fd the harness owns is close-on-exec and >= 3, so dup2 onto 0/1/2 in the child never
// degenerates into dup2(fd, fd) (which would keep FD_CLOEXEC) even when the test process was
// started with stdin/stdout closed.
int high_cloexec(int fd) {
  if (fd < 0 || fd > 2)
    return fd;
  int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return hi;
}

int make_memfd(const char *name) { return high_cloexec(::memfd_create(name, MFD_CLOEXEC)); }

std::string read_whole_fd(int fd) {
  std::string out;
  if (fd < 0)
    return out;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

void close_fd(int &fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

// /proc/<pid>/stat fields after the command name: state and ppid.
bool read_stat(pid_t pid, char &state, pid_t &ppid) {
  std::string s = read_file(fmt::format("/proc/{}/stat", pid));
  auto close_paren = s.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= s.size())
    return false;
  std::istringstream in(s.substr(close_paren + 2));
  in >> state >> ppid;
  return static_cast<bool>(in);
}

std::string cmdline_of(pid_t pid) {
  std::string s = read_file(fmt::format("/proc/{}/cmdline", pid));
  std::replace(s.begin(), s.end(), '\0', ' ');
  return trim(s);
}

// mountinfo field 5 with the kernel's octal escapes (\040 for space...) decoded.
std::string mount_point_of(const std::string &line) {
  std::istringstream in(line);
  std::string field;
  for (int i = 0; i < 5 && in >> field; ++i) {
  }
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int v = 0;
      bool octal = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = field[i + k];
        if (c < '0' || c > '7')
          octal = false;
        v = v * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

bool under(const std::string &path, const std::string &dir) {
  return !dir.empty() && (path == dir || path.rfind(dir + "/", 0) == 0);
}

std::string make_dtemp(const std::string &pattern) {
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return {};
  return std::string(buf.data());
}

std::string g_template_dir; // parent of the cached template rootfs

class HarnessEnvironment : public ::testing::Environment {
public:
  void SetUp() override {
    // Container inits whose runtime process exited are re-parented to us, not to pid 1: we can
    // see and reap them, and a leaked one shows up in live_children().
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  }
  void TearDown() override {
    reap_zombies();
    if (!g_template_dir.empty()) {
      std::error_code ec;
      fs::remove_all(g_template_dir, ec);
      g_template_dir.clear();
    }
  }
};

[[maybe_unused]] ::testing::Environment *const g_environment =
    ::testing::AddGlobalTestEnvironment(new HarnessEnvironment);

} // namespace

// ---------------------------------------------------------------------------------------------
// Commands

std::string CommandResult::describe() const {
  std::string s = "command:";
  for (const auto &arg : argv) {
    std::string a = arg.size() <= 200 ? arg : fmt::format("{}...({} bytes)", arg.substr(0, 40), arg.size());
    s += " " + (a.find(' ') == std::string::npos ? a : "'" + a + "'");
  }
  s += "\n";
  if (!spawn_error.empty())
    s += "spawn error: " + spawn_error + "\n";
  if (exit_code >= 0)
    s += fmt::format("exit code: {}\n", exit_code);
  if (signal)
    s += fmt::format("killed by signal {}\n", signal);
  if (timed_out)
    s += "TIMED OUT\n";
  s += fmt::format("duration: {:.2f}s\n", seconds);
  s += "stdout: <<<" + out + ">>>\n";
  s += "stderr: <<<" + err + ">>>\n";
  return s;
}

std::ostream &operator<<(std::ostream &os, const CommandResult &r) { return os << r.describe(); }

Command::Command(const std::vector<std::string> &argv, const CommandOptions &opts) : opts_(opts) {
  result_.argv = argv;
  start_ = std::chrono::steady_clock::now();
  if (argv.empty()) {
    result_.spawn_error = "empty argv";
    waited_ = true;
    return;
  }
  out_fd_ = make_memfd("bh-test-stdout");
  err_fd_ = make_memfd("bh-test-stderr");
  int in_fd = -1;
  if (opts.stdin_data) {
    in_fd = make_memfd("bh-test-stdin");
    if (in_fd >= 0) {
      const std::string &d = *opts.stdin_data;
      size_t done = 0;
      while (done < d.size()) {
        ssize_t n = ::write(in_fd, d.data() + done, d.size() - done);
        if (n <= 0)
          break;
        done += static_cast<size_t>(n);
      }
      ::lseek(in_fd, 0, SEEK_SET);
    }
  } else {
    in_fd = high_cloexec(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  int errpipe[2] = {-1, -1};
  if (::pipe2(errpipe, O_CLOEXEC) == 0) {
    errpipe[0] = high_cloexec(errpipe[0]);
    errpipe[1] = high_cloexec(errpipe[1]);
  }
  if (out_fd_ < 0 || err_fd_ < 0 || in_fd < 0 || errpipe[0] < 0 || errpipe[1] < 0) {
    result_.spawn_error = fmt::format("setting up stdio: {}", std::strerror(errno));
    close_fd(in_fd);
    close_fd(errpipe[0]);
    close_fd(errpipe[1]);
    waited_ = true;
    return;
  }

  std::vector<char *> cargv;
  for (const auto &a : argv)
    cargv.push_back(const_cast<char *>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP)
        ::signal(sig, SIG_DFL);
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd_, 1) < 0 || ::dup2(err_fd_, 2) < 0) {
      int e = errno;
      [[maybe_unused]] ssize_t n = ::write(errpipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execvp(cargv[0], cargv.data());
    int e = errno;
    [[maybe_unused]] ssize_t n = ::write(errpipe[1], &e, sizeof e);
    ::_exit(127);
  }
  close_fd(in_fd);
  close_fd(errpipe[1]);
  if (pid < 0) {
    result_.spawn_error = fmt::format("fork: {}", std::strerror(errno));
    close_fd(errpipe[0]);
    waited_ = true;
    return;
  }
  pid_ = pid;
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(errpipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close_fd(errpipe[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    result_.spawn_error = fmt::format("exec {}: {}", argv[0], std::strerror(child_errno));
    int status = 0;
    ::waitpid(pid_, &status, 0);
    waited_ = true;
  }
}

Command::Command(Command &&o) noexcept
    : result_(std::move(o.result_)), opts_(o.opts_), pid_(o.pid_), out_fd_(o.out_fd_), err_fd_(o.err_fd_),
      start_(o.start_), waited_(o.waited_) {
  o.pid_ = -1;
  o.out_fd_ = o.err_fd_ = -1;
  o.waited_ = true;
}

Command::~Command() {
  if (!waited_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  close_fd(out_fd_);
  close_fd(err_fd_);
}

CommandResult Command::wait() {
  if (!waited_ && pid_ > 0) {
    auto deadline = start_ + opts_.timeout;
    auto nap = 1ms;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_)
        break;
      if (r < 0 && errno != EINTR)
        break;
      if (std::chrono::steady_clock::now() >= deadline) {
        result_.timed_out = true;
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(nap);
      nap = std::min<std::chrono::milliseconds>(nap * 2, 10ms);
    }
    if (WIFEXITED(status))
      result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status))
      result_.signal = WTERMSIG(status);
    waited_ = true;
  }
  result_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  result_.out = read_whole_fd(out_fd_);
  result_.err = read_whole_fd(err_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
  return result_;
}

CommandResult run_command(const std::vector<std::string> &argv, const CommandOptions &opts) {
  Command c(argv, opts);
  return c.wait();
}

// ---------------------------------------------------------------------------------------------
// Host helpers

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_file(const std::string &path, std::string_view content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return false;
  bool ok = true;
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  ::fchmod(fd, mode);
  ::close(fd);
  return ok;
}

bool path_exists(const std::string &path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::vector<std::string> split_lines(const std::string &s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

std::vector<std::string> split_words(const std::string &s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  std::string w;
  while (in >> w)
    words.push_back(w);
  return words;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::vector<std::string> mountinfo_snapshot() { return split_lines(read_file("/proc/self/mountinfo")); }

std::vector<std::string> new_mounts(const std::vector<std::string> &before) {
  std::set<std::string> old(before.begin(), before.end());
  std::vector<std::string> added;
  for (auto &line : mountinfo_snapshot())
    // The daemon suites' directories (tests/daemon/daemon_fixture.cpp) have their own leak check:
    // their mounts are not this test's, so the two suites can run side by side.
    if (!old.count(line) && mount_point_of(line).rfind("/var/tmp/bhd-test-", 0) != 0)
      added.push_back(line);
  return added;
}

bool process_exists(pid_t pid) {
  if (pid <= 0)
    return false;
  char state = 0;
  pid_t ppid = 0;
  if (!read_stat(pid, state, ppid))
    return false;
  return state != 'Z' && state != 'X' && state != 'x';
}

bool is_zombie(pid_t pid) {
  char state = 0;
  pid_t ppid = 0;
  return pid > 0 && read_stat(pid, state, ppid) && state == 'Z';
}

std::vector<pid_t> live_children() {
  std::vector<pid_t> out;
  pid_t self = ::getpid();
  DIR *d = ::opendir("/proc");
  if (!d)
    return out;
  while (dirent *e = ::readdir(d)) {
    char *end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0')
      continue;
    char state = 0;
    pid_t ppid = 0;
    if (read_stat(static_cast<pid_t>(pid), state, ppid) && ppid == self && state != 'Z' && state != 'X')
      out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

void reap_zombies() {
  int status = 0;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

std::vector<pid_t> wait_gone(const std::vector<pid_t> &pids, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<pid_t> alive;
    for (pid_t p : pids)
      if (process_exists(p))
        alive.push_back(p);
    if (alive.empty() || std::chrono::steady_clock::now() >= deadline)
      return alive;
    std::this_thread::sleep_for(20ms);
  }
}

std::string runtime_path() {
  const char *env = std::getenv("BULKHEAD_RUNTIME");
  if (env && *env)
    return env;
  return BULKHEAD_BINARY;
}

bool runtime_is_runc() { return contains(fs::path(runtime_path()).filename().string(), "runc"); }

const std::string &rootfs_template() {
  static std::string rootfs;
  if (!rootfs.empty())
    return rootfs;
  g_template_dir = make_dtemp("/tmp/bulkhead-itest-template-XXXXXX");
  if (g_template_dir.empty())
    throw std::runtime_error("mkdtemp for the rootfs template failed");
  ::chmod(g_template_dir.c_str(), 0755);
  std::string r = g_template_dir + "/rootfs";
  for (const char *dir : {"", "/bin", "/proc", "/sys", "/dev", "/tmp", "/etc", "/root"}) {
    std::string p = r + dir;
    if (::mkdir(p.c_str(), 0755) != 0)
      throw std::runtime_error("mkdir " + p + ": " + std::strerror(errno));
  }
  ::chmod((r + "/tmp").c_str(), 01777);
  ::chmod((r + "/root").c_str(), 0700);
  fs::copy_file("/usr/bin/busybox", r + "/bin/busybox");
  ::chmod((r + "/bin/busybox").c_str(), 0755);
  CommandResult list = run_command({"/usr/bin/busybox", "--list"});
  if (!list.ok())
    throw std::runtime_error("busybox --list failed: " + list.describe());
  for (const auto &applet : split_words(list.out)) {
    if (applet == "busybox" || applet.find('/') != std::string::npos)
      continue;
    std::string link = r + "/bin/" + applet;
    if (::symlink("busybox", link.c_str()) != 0)
      throw std::runtime_error("symlink " + link + ": " + std::strerror(errno));
  }
  rootfs = r;
  return rootfs;
}

bool kernel_has_user_namespaces() {
  if (!path_exists("/proc/self/ns/user"))
    return false;
  pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(::unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  if (pid < 0)
    return false;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// ---------------------------------------------------------------------------------------------
// Fixture

void BulkheadTest::SetUp() {
  if (::geteuid() != 0)
    GTEST_SKIP() << "integration tests need root";
  std::string rt = runtime_path();
  ASSERT_EQ(::access(rt.c_str(), X_OK), 0)
      << "runtime binary " << rt << " is not executable (build it, or set BULKHEAD_RUNTIME)";
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  tmp_ = make_dtemp("/tmp/bulkhead-itest-XXXXXX");
  ASSERT_FALSE(tmp_.empty()) << "mkdtemp: " << std::strerror(errno);
  // Bundles must be traversable by a user-namespaced container's root (host uid 100000).
  ::chmod(tmp_.c_str(), 0755);
  ::mkdir("/run", 0755);
  root_ = make_dtemp("/run/bulkhead-test-XXXXXX");
  ASSERT_FALSE(root_.empty()) << "mkdtemp: " << std::strerror(errno);
  mounts_before_ = mountinfo_snapshot();
}

void BulkheadTest::TearDown() {
  if (root_.empty())
    return;
  // 1. Force-delete every container the test left behind.
  std::set<std::string> ids;
  CommandResult list = bh({"list", "-q"}, {.stdin_data = {}, .timeout = 20s});
  for (auto &line : split_lines(list.out))
    if (!trim(line).empty())
      ids.insert(trim(line));
  for (auto &e : root_entries())
    if (!e.empty() && e[0] != '.')
      ids.insert(e);
  for (const auto &id : ids)
    bh({"delete", "--force", id}, {.stdin_data = {}, .timeout = 20s});

  // 2. Nothing may outlive its container: leftover processes are a runtime bug; kill them anyway.
  auto leftover = wait_gone(live_children(), 3s);
  if (!leftover.empty()) {
    std::string desc;
    for (pid_t p : leftover)
      desc += fmt::format(" [{}: {}]", p, cmdline_of(p));
    ADD_FAILURE() << "processes left after force-deleting all containers:" << desc;
    for (pid_t p : leftover)
      ::kill(p, SIGKILL);
    wait_gone(leftover, 5s);
  }
  reap_zombies();

  // 3. Mounts that leaked into the host: detach the ones under our dirs before removing them.
  auto added = new_mounts(mounts_before_);
  if (!added.empty()) {
    std::string desc;
    for (auto &l : added)
      desc += "\n  " + l;
    ADD_FAILURE() << "host mounts added during the test and still present:" << desc;
    for (auto it = added.rbegin(); it != added.rend(); ++it) {
      std::string mp = mount_point_of(*it);
      if (under(mp, tmp_) || under(mp, root_))
        ::umount2(mp.c_str(), MNT_DETACH);
    }
  }

  // 4. Remove the test's dirs without crossing into anything still mounted.
  run_command({"rm", "-rf", "--one-file-system", tmp_, root_});
}

CommandResult BulkheadTest::bh(const std::vector<std::string> &args, const CommandOptions &opts) {
  return bh_spawn(args, opts).wait();
}

Command BulkheadTest::bh_spawn(const std::vector<std::string> &args, const CommandOptions &opts) {
  std::vector<std::string> argv = {runtime_path(), "--root", root_};
  argv.insert(argv.end(), args.begin(), args.end());
  return Command(argv, opts);
}

json BulkheadTest::default_config(const std::vector<std::string> &args) const {
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  return json{
      {"ociVersion", "1.0.2-dev"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "bulkhead"},
      {"mounts",
       {
           {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
           {{"destination", "/dev"},
            {"type", "tmpfs"},
            {"source", "tmpfs"},
            {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
           {{"destination", "/dev/pts"},
            {"type", "devpts"},
            {"source", "devpts"},
            {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
           {{"destination", "/dev/shm"},
            {"type", "tmpfs"},
            {"source", "shm"},
            {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
           {{"destination", "/dev/mqueue"},
            {"type", "mqueue"},
            {"source", "mqueue"},
            {"options", {"nosuid", "noexec", "nodev"}}},
           {{"destination", "/sys"},
            {"type", "sysfs"},
            {"source", "sysfs"},
            {"options", {"nosuid", "noexec", "nodev", "ro"}}},
       }},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
        {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
}

std::string BulkheadTest::make_bundle(const std::vector<std::string> &args, const Mutator &mutate,
                                      std::string name) {
  if (name.empty())
    name = fmt::format("bundle{}", ++bundle_counter_);
  std::string bundle = tmp_ + "/" + name;
  if (::mkdir(bundle.c_str(), 0755) != 0) {
    ADD_FAILURE() << "mkdir " << bundle << ": " << std::strerror(errno);
    return bundle;
  }
  CommandResult cp = run_command({"cp", "-a", rootfs_template(), rootfs(bundle)});
  EXPECT_TRUE(cp.ok()) << cp;
  json config = default_config(args);
  if (mutate)
    mutate(config);
  write_config(bundle, config);
  return bundle;
}

void BulkheadTest::write_config(const std::string &bundle, const json &config) {
  EXPECT_TRUE(write_file(bundle + "/config.json", config.dump(2) + "\n")) << "writing config.json";
}

CommandResult BulkheadTest::run_container(const std::vector<std::string> &args, const Mutator &mutate,
                                          const CommandOptions &opts) {
  std::string bundle = make_bundle(args, mutate);
  return bh({"run", "--bundle", bundle, fmt::format("run{}", ++run_counter_)}, opts);
}

std::string BulkheadTest::make_temp_dir(const std::string &name) {
  std::string dir = tmp_ + "/" + name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  EXPECT_FALSE(ec) << "creating " << dir << ": " << ec.message();
  ::chmod(dir.c_str(), 0755);
  return dir;
}

std::vector<std::string> BulkheadTest::root_entries() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(root_, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> BulkheadTest::root_dirs() const {
  std::vector<std::string> out;
  for (auto &e : root_entries()) {
    struct stat st;
    if (::lstat((root_ + "/" + e).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      out.push_back(e);
  }
  return out;
}

tl::expected<json, std::string> BulkheadTest::state(const std::string &id) {
  CommandResult r = bh({"state", id});
  if (!r.ok())
    return tl::unexpected<std::string>(r.describe());
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return tl::unexpected<std::string>("state output is not a JSON object\n" + r.describe());
  return j;
}

std::string BulkheadTest::status_of(const std::string &id) {
  auto s = state(id);
  if (!s || !s->contains("status") || !(*s)["status"].is_string())
    return {};
  return (*s)["status"].get<std::string>();
}

std::string BulkheadTest::wait_for_status(const std::string &id, const std::string &status,
                                          std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    last = status_of(id);
    if (last == status || std::chrono::steady_clock::now() >= deadline)
      return last;
    std::this_thread::sleep_for(20ms);
  }
}

pid_t BulkheadTest::read_pid_file(const std::string &path) {
  std::string s = trim(read_file(path));
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return 0;
  return static_cast<pid_t>(std::stol(s));
}

pid_t BulkheadTest::create(const std::string &bundle, const std::string &id) {
  CommandResult r = bh({"create", "--bundle", bundle, "--pid-file", pid_file(id), id});
  EXPECT_TRUE(r.ok()) << r;
  if (!r.ok())
    return 0;
  pid_t pid = read_pid_file(pid_file(id));
  EXPECT_GT(pid, 0) << "pid file " << pid_file(id) << ": '" << read_file(pid_file(id)) << "'";
  return pid;
}

pid_t BulkheadTest::create_and_start(const std::string &bundle, const std::string &id) {
  pid_t pid = create(bundle, id);
  if (pid <= 0)
    return 0;
  CommandResult r = bh({"start", id});
  EXPECT_TRUE(r.ok()) << r;
  return r.ok() ? pid : 0;
}

::testing::AssertionResult BulkheadTest::no_new_mounts() {
  auto added = new_mounts(mounts_before_);
  if (added.empty())
    return ::testing::AssertionSuccess();
  auto f = ::testing::AssertionFailure() << "new host mounts:";
  for (auto &l : added)
    f << "\n  " << l;
  return f;
}

::testing::AssertionResult BulkheadTest::failed_cleanly(const CommandResult &r, std::string_view text,
                                                        const std::string &id,
                                                        const std::vector<pid_t> &allowed) {
  if (!r.spawn_error.empty())
    return ::testing::AssertionFailure() << "could not run:\n" << r;
  if (r.timed_out)
    return ::testing::AssertionFailure() << "timed out:\n" << r;
  if (r.exit_code == 0)
    return ::testing::AssertionFailure() << "expected a failure, got exit 0:\n" << r;
  std::string err = trim(r.err);
  if (err.empty())
    return ::testing::AssertionFailure() << "no error message on stderr:\n" << r;
  if (contains(err, "\n"))
    return ::testing::AssertionFailure() << "error is not one line:\n" << r;
  if (!contains(err, text))
    return ::testing::AssertionFailure() << "error does not contain '" << text << "':\n" << r;
  if (!id.empty() && state_dir_exists(id))
    return ::testing::AssertionFailure() << "state dir " << state_dir(id) << " left behind after:\n" << r;
  if (auto m = no_new_mounts(); !m)
    return m << "\nafter:\n" << r;
  std::vector<pid_t> children;
  for (pid_t p : live_children())
    if (std::find(allowed.begin(), allowed.end(), p) == allowed.end())
      children.push_back(p);
  auto leftover = wait_gone(children, 2s);
  if (!leftover.empty()) {
    auto f = ::testing::AssertionFailure() << "processes left behind:";
    for (pid_t p : leftover)
      f << " [" << p << ": " << cmdline_of(p) << "]";
    return f << "\nafter:\n" << r;
  }
  return ::testing::AssertionSuccess();
}

} // namespace bh_test
