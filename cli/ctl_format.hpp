// What bulkheadctl shows people: sizes, tables, the container view, event lines, progress.
// Pure functions of the API's JSON, so the tests check the exact text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bulkhead::ctl {

// 1288490 -> "1.2MiB", 268435456 -> "256MiB", 512 -> "512B" (one decimal, dropped when ".0").
std::string human_size(uint64_t bytes);
// The list's MEMORY column: "12.3MiB/256MiB", "12.3MiB/-" without a limit, "-" when stopped.
std::string memory_column(const nlohmann::json &container);
// The list's CPU column: CPU seconds used, "1.25s"; "-" when not known.
std::string cpu_column(const nlohmann::json &container);

// A Unix time as "2026-12-04 16:05:09" in local time; "-" for 0.
std::string local_time(int64_t unix_s);

// Columns padded to their widest cell, two spaces apart, no trailing blanks.
std::string render_table(const std::vector<std::string> &header,
                         const std::vector<std::vector<std::string>> &rows);

std::string container_table(const nlohmann::json &containers);
std::string template_table(const nlohmann::json &templates);
// `info` without --json: "key: value" lines.
std::string container_view(const nlohmann::json &container);

// `host evacuate` (docs/migration.md "Evacuating a host"): the operation's metadata as a table, one
// row per container (a dry run: what would move and why the others would be refused), then a line
// of counts.
std::string evacuation_table(const nlohmann::json &metadata);
// GET /1.0/host for `host info`: "key: value" lines.
std::string host_view(const nlohmann::json &host);
// GET /1.0/cluster for `cluster list`: HOST ADDRESS STATE CONTAINERS, the containers as
// "NAME=STATE" comma-separated ("-" for none); "" when the answer has no hosts.
std::string cluster_table(const nlohmann::json &cluster);
// The line `list` and `info` print while the host is being evacuated; "" otherwise.
std::string host_note(const nlohmann::json &host);

// An Event as "TIME ACTION NAME detail" (local time, detail as key=value words).
std::string event_line(const nlohmann::json &event);

// "importing busybox: extracting [#####     ] 52% 12.1/23.4 MiB" for an Operation's progress.
std::string progress_line(const std::string &verb, const std::string &name, const nlohmann::json &operation,
                          int bar_width = 10);

} // namespace bulkhead::ctl
