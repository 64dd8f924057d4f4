// bulkheadctl's value checks and conversions, done before anything is sent, so a typo is reported
// as "--memory "12Q": ..." by the client rather than as a 400 from the daemon.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::ctl {

// "256M", "1.5G", "512KiB", "1048576" (bytes): binary units, case-insensitive, B optional.
Result<uint64_t> parse_size(const std::string &text);
// Container and template names: [a-z0-9][a-z0-9-]{0,62} (docs/api.md).
Status check_name(const std::string &name);
// no | on-failure | on-failure:N | always.
Status check_restart(const std::string &policy);
// KEY=VALUE with a non-empty KEY and no '=' in it.
Status check_env(const std::string &entry);
// A positive number of CPUs, at most 4096.
Result<double> parse_cpus(const std::string &text);
// A positive pids limit.
Result<int64_t> parse_pids(const std::string &text);
// "1500ms", "2s", "10m", "2h", "1d", or a plain number of plain_ms units -> milliseconds.
Result<int64_t> parse_duration_ms(const std::string &text, int64_t plain_ms);
// A token's life: "90s", "10m", "2h", "1d" or plain seconds (whole seconds).
Result<int64_t> parse_duration_s(const std::string &text);
// "TERM", "SIGTERM", "term", "15" -> "TERM", the spelling the API takes.
Result<std::string> normalize_signal(const std::string &text);

// `port add`'s HOSTPORT:CTPORT[/tcp|udp] and `port rm`'s HOSTPORT[/tcp|udp] (proto: tcp when
// left out); each port 1 to 65535, written in decimal.
struct PortSpec {
  uint16_t host_port = 0;
  uint16_t container_port = 0; // 0 for HOSTPORT[/proto]
  std::string proto = "tcp";
};
Result<PortSpec> parse_port_spec(const std::string &text, bool with_container_port);

// `create ... --init PATH ARG...`: --init takes every word after it. Removes "--init" and what
// follows from args and returns those words (empty when there is no --init). Only a create
// command line is split; the words before "create" are the global flags.
std::optional<std::vector<std::string>> split_init(std::vector<std::string> &args);

} // namespace bulkhead::ctl
