// Client side of the per-container monitor's control socket (protocol table in daemon/monitor.cpp).
// bulkheadctl uses it for exec and console (streams the HTTP API cannot carry), the daemon for
// status after it restarts.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

struct ExecRequest {
  std::vector<std::string> args;
  std::vector<std::string> env; // KEY=VALUE
  std::string user;             // "uid[:gid]" or a name resolved inside the container; empty: root
  std::string cwd;              // empty: /
  bool tty = false;
  unsigned short rows = 0, cols = 0; // initial window size with tty
};

// Runs args in the container with the caller's stdin/stdout/stderr (fds passed over SCM_RIGHTS;
// with tty, the monitor's worker relays between them and a new pty). Returns the exit status
// (128+N when killed by signal N). With tty and winch_fd >= 0 (a signalfd for SIGWINCH, or any
// fd that turns readable when the caller's terminal changes size), every change is sent to the
// monitor as a resize line; the worker then copies the window size of in_fd to the container's pty.
Result<int> monitor_exec(const std::string &socket_path, const ExecRequest &request, int in_fd, int out_fd,
                         int err_fd, int winch_fd = -1);
// Opens a console session: returns a connected fd; bytes written go to the console pty, bytes read
// come from it. The caller relays its terminal and handles the detach key.
Result<int> monitor_console(const std::string &socket_path);
// {"monitor_pid", "init_pid", "init_start_time", "started_unix"}.
Result<nlohmann::json> monitor_status(const std::string &socket_path);
// CRIU dumps the container into `images` (an existing directory); with stop it is killed after a
// good dump (the monitor then exits). A pre_dump copies only memory pages and the tree runs on;
// `parent` (relative to `images`, may be empty) names the previous pre-dump, so only pages changed since it
// go into `images`. Returns when CRIU is done; the error names CRIU's.
Status monitor_checkpoint(const std::string &socket_path, const std::string &images, bool stop,
                          bool pre_dump = false, const std::string &parent = {});

// A dump in two steps, so that a freeze between them does not include starting CRIU (~0.1 s in the
// test VM): prepare() asks the monitor, whose worker starts `criu swrk` and waits; dump() lets it
// dump and waits for the end, as monitor_checkpoint does. Dropped without dump(), the connection
// closes and the worker and its CRIU exit without touching the container; the destructor waits
// (up to 10 s) until the worker has closed its end, so the monitor takes the next checkpoint
// right after.
// request() only asks: the worker starts CRIU meanwhile, and ready() (or dump()) reads its answer
// later, so a caller can start the next dump's CRIU long before it (the replicator does, right
// after a round's freeze) and name that dump's images at dump().
class MonitorDump {
public:
  static Result<MonitorDump> prepare(const std::string &socket_path, const std::string &images, bool stop,
                                     const std::string &parent = {});
  static Result<MonitorDump> request(const std::string &socket_path, const std::string &images, bool stop,
                                     const std::string &parent = {});
  MonitorDump(MonitorDump &&) noexcept = default;
  MonitorDump &operator=(MonitorDump &&) = delete;
  MonitorDump(const MonitorDump &) = delete;
  ~MonitorDump();
  // Waits for the worker's {"ready":true} (once).
  Status ready();
  // With images, the go names them and their parent ("": none) instead of the request.
  Status dump(const std::string &images = {}, const std::string &parent = {});

private:
  MonitorDump(std::string socket_path, UniqueFd conn, bool ready)
      : socket_(std::move(socket_path)), conn_(std::move(conn)), ready_(ready) {}
  std::string socket_;
  UniqueFd conn_;
  bool ready_ = false;
};

} // namespace bulkhead::daemon
