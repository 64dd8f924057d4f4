// Runs the library's helper (the static `bulkhead` or `bulkheadctl` binary) with posix_spawn, so a
// multithreaded caller is never forked. The handshake is the table in helper_spawn.cpp.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::abi {

struct HelperResult {
  int exit_status = 0; // exit code, or 128+N when killed by signal N
  std::string out;     // stdout (Stdio::Capture)
  std::string err;     // stderr (Stdio::Capture), trimmed
  std::string log;     // what the helper wrote to fd 3 (`--log /dev/fd/3`)
};

// Where the helper's stdout/stderr go. A container the helper leaves running (create, run --detach)
// inherits them, so those must not be our pipes (we would wait for an EOF that never comes).
enum class Stdio { Capture, Null, Inherit };

// Runs argv (argv[0] an absolute path) with `input` on its stdin (else /dev/null) and a pipe at fd 3
// for its log. on_line, when set, gets each stdout line as it arrives instead of `out`; returning
// false stops the helper (SIGTERM) and is not an error.
Result<HelperResult> run_helper(const std::vector<std::string> &argv, std::string_view input, Stdio stdio,
                                const std::function<bool(std::string_view)> &on_line = {});

} // namespace bulkhead::abi
