// libbulkhead: the one API behind the `bulkhead` CLI, the hosting daemon and embedding agents.
//
// Threading: create/run clone the container's init, so call them from a single-threaded process
// (a multithreaded embedder spawns a helper process for them). Every call returns a Result.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "oci/state.hpp"

namespace bulkhead {

enum class LogLevel { Debug, Info, Warning, Error };

struct RuntimeOptions {
  std::string root = "/run/bulkhead"; // state directory, one subdirectory per container
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
  int preserve_fds = 0; // fds 3 .. 3+N-1 are passed to the container process
};

struct RunOptions {
  bool detach = false;
  bool no_subreaper = false;
};

struct DeleteOptions {
  bool force = false;
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
  // create + start; in the foreground it waits, forwards signals, deletes the container and
  // returns the exit status (128+N when killed by signal N).
  Result<int> run(const std::string &id, const CreateOptions &create, const RunOptions &run);
  Result<std::vector<oci::State>> list();

  const RuntimeOptions &options() const { return options_; }

private:
  RuntimeOptions options_;
};

// Parses "KILL", "SIGKILL", "kill" or "9".
Result<int> parse_signal(const std::string &text);

} // namespace bulkhead
