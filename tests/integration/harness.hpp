// Integration-test harness: drives the real runtime binary (runc's CLI) on busybox-static bundles.
//
// The binary under test is BULKHEAD_BINARY (set by CMake); the environment variable BULKHEAD_RUNTIME
// overrides it, e.g. BULKHEAD_RUNTIME=/usr/sbin/runc to check the harness itself against runc.
//
// Every test gets its own state root (--root, under /run) and a temp dir (under /tmp) for bundles,
// host-side files and hook scripts. TearDown force-deletes whatever the test left in its root,
// kills and reaps leftover processes (the test binary is a child subreaper, so container inits
// whose runtime process exited are re-parented to it), detaches leaked mounts under the test's
// dirs and removes them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace bh_test {

using json = nlohmann::json;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Running commands

struct CommandOptions {
  std::optional<std::string> stdin_data; // nullopt: stdin is /dev/null
  std::chrono::milliseconds timeout = 30s;
};

struct CommandResult {
  std::vector<std::string> argv;
  int exit_code = -1; // exit status when the command exited normally, else -1
  int signal = 0;     // terminating signal when it was killed
  bool timed_out = false;
  std::string spawn_error; // non-empty when the command could not be started
  std::string out, err;
  double seconds = 0;

  bool ok() const { return exit_code == 0; }
  // Everything needed to understand a failed expectation: argv, status, stdout, stderr.
  std::string describe() const;
};

std::ostream &operator<<(std::ostream &os, const CommandResult &r);

// A started command. stdout/stderr go to memfds (not pipes): a container process that inherits
// them (create, run --detach) cannot make the harness block waiting for EOF. The child runs in
// its own process group so a timeout can kill everything it started.
class Command {
public:
  Command(const std::vector<std::string> &argv, const CommandOptions &opts = {});
  Command(Command &&other) noexcept;
  Command &operator=(Command &&) = delete;
  Command(const Command &) = delete;
  ~Command(); // kills (SIGKILL) and reaps a command that was never waited for

  pid_t pid() const { return pid_; }
  // Waits for exit (or kills the process group at the timeout) and collects the output.
  CommandResult wait();

private:
  CommandResult result_;
  CommandOptions opts_;
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::chrono::steady_clock::time_point start_;
  bool waited_ = false;
};

CommandResult run_command(const std::vector<std::string> &argv, const CommandOptions &opts = {});

// ---------------------------------------------------------------------------------------------
// Small host-side helpers

std::string read_file(const std::string &path); // "" when unreadable
bool write_file(const std::string &path, std::string_view content, mode_t mode = 0644);
bool path_exists(const std::string &path); // lstat: a dangling symlink exists
std::string trim(std::string s);
std::vector<std::string> split_lines(const std::string &s); // no empty trailing line
std::vector<std::string> split_words(const std::string &s);
bool contains(std::string_view haystack, std::string_view needle);

// Lines of /proc/self/mountinfo of the test process (the host's mount namespace).
std::vector<std::string> mountinfo_snapshot();
// Lines present now that were not in `before`.
std::vector<std::string> new_mounts(const std::vector<std::string> &before);

// True when pid is alive; a zombie (or a dead/unknown pid) counts as gone.
bool process_exists(pid_t pid);
bool is_zombie(pid_t pid);
// Children of the test process that are not zombies (leaked container processes end up here,
// since the test process is a child subreaper).
std::vector<pid_t> live_children();
// Reaps every zombie child (never call while a test still expects a zombie to be there).
void reap_zombies();
// Waits until none of the pids exists, up to `timeout`. Returns the ones still alive.
std::vector<pid_t> wait_gone(const std::vector<pid_t> &pids, std::chrono::milliseconds timeout);

// The binary under test (BULKHEAD_RUNTIME overrides BULKHEAD_BINARY).
std::string runtime_path();
bool runtime_is_runc();

// Busybox rootfs template, built once per test-binary run, removed at exit.
const std::string &rootfs_template();

bool kernel_has_user_namespaces();

// ---------------------------------------------------------------------------------------------
// The fixture every integration test derives from

class BulkheadTest : public ::testing::Test {
protected:
  using Mutator = std::function<void(json &)>;

  void SetUp() override;
  void TearDown() override;

  // `runtime --root <root> args...`
  CommandResult bh(const std::vector<std::string> &args, const CommandOptions &opts = {});
  Command bh_spawn(const std::vector<std::string> &args, const CommandOptions &opts = {});

  // A config.json shaped like `runc spec` output (terminal false, root.readonly false).
  json default_config(const std::vector<std::string> &args) const;
  // Creates <tmp>/<name>/{config.json,rootfs} (rootfs copied from the template) and returns the
  // bundle's absolute path. `name` empty: a fresh unique name.
  std::string make_bundle(const std::vector<std::string> &args, const Mutator &mutate = {},
                          std::string name = {});
  void write_config(const std::string &bundle, const json &config);
  // make_bundle + `run --bundle B <fresh id>` in the foreground.
  CommandResult run_container(const std::vector<std::string> &args, const Mutator &mutate = {},
                              const CommandOptions &opts = {});
  static std::string rootfs(const std::string &bundle) { return bundle + "/rootfs"; }

  // A fresh directory under the test's temp dir.
  std::string make_temp_dir(const std::string &name);
  const std::string &tmp() const { return tmp_; }
  const std::string &root() const { return root_; }
  std::string state_dir(const std::string &id) const { return root_ + "/" + id; }
  bool state_dir_exists(const std::string &id) const { return path_exists(state_dir(id)); }
  // Entries of the --root dir (the runtime's state dirs).
  std::vector<std::string> root_entries() const;
  // Only the subdirectories of --root (a runtime may keep lock files there).
  std::vector<std::string> root_dirs() const;

  // `state ID` parsed; the error is the command's output when it failed or did not parse.
  tl::expected<json, std::string> state(const std::string &id);
  std::string status_of(const std::string &id); // "" when state failed
  // Polls `state ID` until its status is `status`; returns the last status seen.
  std::string wait_for_status(const std::string &id, const std::string &status,
                              std::chrono::milliseconds timeout = 10s);

  // create (+ start) with a pid-file under the test dir; the pid is returned (0 on failure,
  // with a test failure recorded).
  pid_t create(const std::string &bundle, const std::string &id);
  pid_t create_and_start(const std::string &bundle, const std::string &id);
  std::string pid_file(const std::string &id) const {
    return tmp_ + "/" + (id.size() <= 64 ? id : id.substr(0, 32) + std::to_string(id.size())) + ".pid";
  }
  static pid_t read_pid_file(const std::string &path);

  // A runtime failure that left nothing behind: non-zero exit, a one-line error on stderr that
  // contains `text`, no state dir for `id` (unless empty), no new host mounts, and no live
  // child processes of the test besides `allowed` (inits of containers that must survive).
  ::testing::AssertionResult failed_cleanly(const CommandResult &r, std::string_view text,
                                            const std::string &id, const std::vector<pid_t> &allowed = {});
  ::testing::AssertionResult no_new_mounts();

  std::vector<std::string> mounts_before_;

private:
  std::string tmp_;  // /tmp/bulkhead-itest-XXXXXX
  std::string root_; // /run/bulkhead-test-XXXXXX
  int bundle_counter_ = 0;
  int run_counter_ = 0;
};

} // namespace bh_test
