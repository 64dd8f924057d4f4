// CRIU through its C library (libcriu, criu/criu.h): checkpoint a process tree into an image
// directory and restore it, as `criu swrk` speaks its RPC. This layer knows CRIU, not containers:
// runtime/checkpoint.cpp describes a container (mounts, namespaces, cgroup, terminal) in these terms.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::migration {

// runc's --manage-cgroups-mode values.
enum class CgroupMode { Soft, Full, Strict, Ignore };
Result<CgroupMode> parse_cgroup_mode(const std::string &text);

// runc's --empty-ns values ("network", the only namespace runc accepts): CLONE_NEW* flags.
Result<unsigned> parse_empty_ns(const std::vector<std::string> &names);

struct ExtMount {
  std::string key, value;
};

// A `criu swrk` started before its request and known to be up: it answered a VERSION request that
// kept the connection open. Starting CRIU (exec and dynamic linking of criu and its libraries, about
// 0.1 s under the test VM's TCG) then happens before a caller's freeze, not inside it. It serves one
// dump through libcriu (criu_local_set_service_fd) and exits; dropped unused, it is killed and reaped.
// Not for restores: CRIU inherits the fds of an inherit-fd from the process it runs as, and those are
// made just before the restore.
//
// With `netns` (an fd), CRIU starts inside that network namespace (criu_netns.hpp: a tree that
// shares CRIU's namespace has its network neither dumped nor locked).
class CriuService {
public:
  static Result<CriuService> start(int netns = -1);
  CriuService(CriuService &&other) noexcept;
  CriuService &operator=(CriuService &&) = delete;
  CriuService(const CriuService &) = delete;
  ~CriuService();

  const std::string &binary() const { return binary_; }
  pid_t pid() const { return pid_; }
  // The connection, for libcriu to send the request on and close.
  int hand_over();
  // Waits for the service's exit once its request is answered.
  void reap();

private:
  CriuService() = default;
  std::string binary_;
  int fd_ = -1;
  pid_t pid_ = -1;
};

struct InheritFd {
  int fd = -1; // an fd of this process; its CLOEXEC flag is cleared so `criu swrk` inherits it
  std::string key;
};

// What dump and restore share.
struct Request {
  std::string images_dir; // must exist
  std::string work_dir;   // logs and temporary files; "" = images_dir
  std::string root;       // the tree's root directory as CRIU sees it
  bool tcp_established = false;
  bool ext_unix_sk = false;
  bool shell_job = false;
  bool file_locks = false;
  bool auto_dedup = false;
  bool lazy_pages = false;
  CgroupMode cgroup_mode = CgroupMode::Soft;
  std::vector<ExtMount> ext_mounts;   // dump: mountpoint -> key; restore: key -> host path
  std::vector<std::string> externals; // dump: "net[INODE]:KEY" (namespaces CRIU must not dump)
  std::vector<InheritFd> inherit_fds; // restore: fds standing for the externals and pipes
  int status_fd = -1;                 // gets a '\0' when CRIU reports "status-ready" (lazy pages)
  // CLONE_NEWNET: the tree's network namespace is its own but CRIU leaves out what is in it (NICs,
  // addresses, routes); a restore makes it afresh, owned by the tree's user namespace, and the
  // caller fills it in setup_namespaces. For a tree in a user namespace, where an external network
  // namespace (a host-owned one handed in) would leave root inside without power over it.
  unsigned empty_ns = 0;
  // CRIU runs in the tree's own network namespace (criu_netns.hpp): CRIU neither dumps nor locks
  // it. A dump then needs a `service` started there and tcp_established off (CRIU would lock each
  // connection with iptables); a restore needs criu_netns.
  bool tree_in_criu_netns = false;
};

struct DumpRequest : Request {
  pid_t pid = 0;
  bool leave_running = false;
  bool pre_dump = false;
  std::string parent_path; // relative to images_dir, as CRIU takes it
  std::string page_server_address;
  int page_server_port = 0;
  std::string freeze_cgroup;      // full path of a cgroup v2 directory: freeze with it, not ptrace
  CriuService *service = nullptr; // started beforehand (CriuService); else libcriu starts one
  // Told "criu answered" and "criu exited" (the service's exit once reaped): where a dump's time goes.
  std::function<void(const std::string &)> progress;
};

struct RestoreRequest : Request {
  std::string cgroup_root; // the cgroup (path below the cgroup2 mount) the tree's root goes into
  // Called once CRIU made the tree's namespaces and before it restores anything in them (CRIU's
  // "setup-namespaces"), with the root task's pid; a failure aborts the restore.
  std::function<Status(pid_t)> setup_namespaces;
  // tree_in_criu_netns: the network namespace (an fd) CRIU, and so the restored tree, runs in.
  int criu_netns = -1;
};

struct Restored {
  pid_t pid = 0;       // the restored root task, our child (CRIU's restore-sibling)
  UniqueFd pts_master; // the terminal's master when the tree had one (orphan-pts-master)
};

Status dump(const DumpRequest &request);
Result<Restored> restore(const RestoreRequest &request);

// For `bulkhead features` and the early, readable errors: is CRIU installed and does it start on
// this kernel.
struct Support {
  std::string binary; // "" when no criu is in PATH
  int version = 0;    // e.g. 31701; 0 when CRIU did not answer
  bool mem_track = false;
  bool lazy_pages = false;
  std::string error; // why CRIU cannot be used here
};
Support probe();

// The criu binary in PATH, or an error naming what to install.
Result<std::string> find_criu();

// How long CRIU worked by its own log: the timestamp of its last line ("(  1.234567) ..." counts
// from the log's start), in ms; nullopt without such a line. Starting CRIU is not in it.
std::optional<int64_t> log_duration_ms(const std::string &path);

// The last `max_lines` lines of a CRIU log that say "Error" (with the line before each), for
// error messages; "" when the log is missing.
std::string log_errors(const std::string &path, size_t max_lines = 6);

} // namespace bulkhead::migration
