// libbulkhead: the one API behind the `bulkhead` CLI, the hosting daemon and embedding agents.
//
// Threading: create/run clone the container's init, so call them from a single-threaded process
// (a multithreaded embedder spawns a helper process for them). Every call returns a Result.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/stats.hpp"
#include "oci/spec.hpp"
#include "oci/state.hpp"

namespace bulkhead {

enum class LogLevel { Debug, Info, Warning, Error };

// The state directory when none is given: /run/bulkhead for root; $XDG_RUNTIME_DIR/bulkhead for a
// rootless caller (the rule of runc and crun: honoured when euid != 0, or when uid 0 of a user
// namespace is not the user "root"); /run/user/EUID/bulkhead when XDG_RUNTIME_DIR is unset.
std::string default_state_root();

struct RuntimeOptions {
  std::string root = default_state_root(); // state directory, one subdirectory per container
  bool systemd_cgroup = false;
  // Warnings the spec says must not fail an operation (poststart/poststop hooks) land here.
  std::function<void(LogLevel, const std::string &)> log;
};

struct CreateOptions {
  std::string bundle = ".";
  std::string pid_file;       // host pid of init, written atomically, no trailing newline
  std::string console_socket; // terminal=true: where the pty master is sent
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0; // fds 3+L .. 3+L+N-1 are passed to the container process (L = listen_fds)
  // Socket activation (systemd's LISTEN_FDS protocol): fds 3 .. 3+L-1 are passed first and the
  // process gets LISTEN_FDS=L and LISTEN_PID=<its pid in the container>.
  int listen_fds = 0;
  std::string pidfd_socket; // a pidfd of init is sent here (SCM_RIGHTS) once it is created
};

struct RunOptions {
  bool detach = false;
  bool no_subreaper = false;
  bool keep = false; // foreground: leave the stopped container (and its cgroup) for `delete`
};

// `exec`: either a full process JSON (process_file) or args plus overrides of the container's own
// process settings. Defaults (env, cwd, user, capabilities, seccomp, ...) come from the config the
// container was created with.
struct ExecOptions {
  std::string process_file;
  std::vector<std::string> args;
  bool tty = false;
  std::string cwd;
  std::vector<std::string> env; // KEY=VALUE, replacing the container's value of KEY
  std::string user;             // "uid[:gid]"
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps; // added to the bounding, effective and permitted sets
  bool no_new_privs = false;
  std::string apparmor;
  std::string process_label;
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  std::string pidfd_socket; // a pidfd of the process is sent here (SCM_RIGHTS) once it runs
  int preserve_fds = 0;
  bool ignore_paused = false;
  // `--cgroup [CONTROLLER[,CONTROLLER]:]PATH` (repeatable): an existing sub-cgroup of the
  // container's cgroup to run the process in. cgroup v2 has one hierarchy, so every entry must
  // name the same PATH; the controllers are informational.
  std::vector<std::string> sub_cgroups;
};

// What `checkpoint` and `restore` share (runc's flags of the same names).
struct CriuOptions {
  std::string image_path; // "" = ./checkpoint, as runc
  std::string work_path;  // CRIU's log (dump.log, restore.log) and temporary files; "" = image_path
  bool tcp_established = false;
  bool ext_unix_sk = false;
  bool shell_job = false;
  bool file_locks = false;
  bool auto_dedup = false;
  bool lazy_pages = false;
  std::string manage_cgroups_mode;   // soft (default), full, strict, ignore
  std::vector<std::string> empty_ns; // "network"
};

// `checkpoint` (runc's flags): CRIU dumps the container's process tree into image_path.
struct CheckpointOptions : CriuOptions {
  std::string parent_path; // previous (pre-)dump, relative to image_path
  bool leave_running = false;
  bool pre_dump = false;
  std::string page_server; // ADDRESS:PORT
  int status_fd = -1;
  // Called once CRIU is up, before the container's state is read and CRIU is asked to dump (not
  // for a pre-dump): a caller that freezes the container itself (bulkheadd, with Runtime::pause)
  // freezes it here, so the freeze does not include starting CRIU. An error cancels the
  // checkpoint before CRIU touches the container. It may set image_path, work_path and
  // parent_path of the options it is given (a copy of these): a caller that starts CRIU ahead of a
  // dump names its images only then.
  std::function<Status(CheckpointOptions &)> before_dump;
  // bulkheadd's checkpoints: the spec's tmpfs mounts are copied by the runtime into the images
  // during the freeze, not archived by CRIU with tar and gzip (runtime/checkpoint_tmpfs.hpp). Such
  // images restore with bulkhead only, so the OCI face leaves this off (runc-compatible images).
  bool tmpfs_by_runtime = false;
  // bulkheadd's dumps that leave the container running (replication rounds): when the container
  // has a network namespace of its own (no user namespace) and no TCP connection once frozen, CRIU
  // runs inside that namespace and so neither saves nor locks it; CRIU 3.17 cannot skip its lock
  // otherwise (runtime/checkpoint_netns.hpp). Such images restore with bulkhead only.
  bool skip_idle_network_lock = false;
};

// `restore`: a new container ID from a checkpoint and the bundle it was created from.
struct RestoreOptions : CriuOptions {
  std::string bundle = ".";
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  bool no_subreaper = false;
  bool no_pivot = false; // accepted: CRIU rebuilds the mount tree itself
};

struct DeleteOptions {
  bool force = false;
};

struct EventsOptions {
  int interval_ms = 5000;
  bool once = false; // `events --stats`: a single stats event
};

class Runtime {
public:
  explicit Runtime(RuntimeOptions options);

  // Builds the container and leaves init blocked before exec. Returns init's host pid.
  Result<int> create(const std::string &id, const CreateOptions &options);
  Status start(const std::string &id);
  Result<oci::State> state(const std::string &id);
  Status kill(const std::string &id, int signal, bool all);
  Status remove(const std::string &id, const DeleteOptions &options);
  // create + start; in the foreground it waits, forwards signals, deletes the container (unless
  // RunOptions::keep) and returns the exit status (128+N when killed by signal N).
  Result<int> run(const std::string &id, const CreateOptions &create, const RunOptions &run);
  Result<std::vector<oci::State>> list();
  // Runs a process inside a running container (every namespace, the cgroup and the confinement).
  // Returns its exit status, or 0 with detach.
  Result<int> exec(const std::string &id, const ExecOptions &options);

  // CRIU checkpoint/restore (runtime/checkpoint.cpp, migration/). checkpoint leaves the container
  // running when it fails; restore returns the exit status in the foreground, 0 with detach.
  Status checkpoint(const std::string &id, const CheckpointOptions &options);
  Result<int> restore(const std::string &id, const RestoreOptions &options);

  // cgroup v2 operations (runtime/cgroup_ops.cpp).
  // Freezes every process of the container and waits until the kernel reports it frozen.
  Status pause(const std::string &id);
  Status resume(const std::string &id);
  // Applies new limits to a running (or created/paused) container, with runc's update rules.
  Status update(const std::string &id, const oci::Resources &resources);
  Result<ContainerStats> stats(const std::string &id);
  // Host pids of every process in the container's cgroup.
  Result<std::vector<int>> processes(const std::string &id);
  // Calls `on_event` with a "stats" event every `interval_ms` and an "oom" event for each OOM kill,
  // until the container stops or `on_event` returns false. With `once`, one stats event only.
  Status events(const std::string &id, const EventsOptions &options,
                const std::function<bool(const ContainerEvent &)> &on_event);

  const RuntimeOptions &options() const { return options_; }

private:
  RuntimeOptions options_;
};

// The runtime-spec features document of this build (`bulkhead features`).
std::string features_json();

// Parses "KILL", "SIGKILL", "kill", "9" or "0" (kill(2)'s existence check).
Result<int> parse_signal(const std::string &text);

} // namespace bulkhead
