// Small pieces of the monitor that touch the host: durable record files, the control socket and
// who may use it, and line-based reads on stream sockets (shared with monitor_client.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

// Temp file + fsync + rename + fsync of the directory: after a crash the daemon finds the old or
// the new record, never a torn one.
Status write_durable(const std::string &path, std::string_view data);

// The gid of group `name` in /etc/group (read directly: a static binary has no NSS), -1 if absent.
int group_id(const std::string &name, const std::string &group_file = "/etc/group");

// Listening unix stream socket at `path` (a stale socket there is replaced), mode 0660, group
// `gid` when gid >= 0. Non-blocking, close-on-exec cleared by the caller if it must survive exec.
Result<UniqueFd> listen_control_socket(const std::string &path, int gid);

// SO_PEERCRED (and SO_PEERGROUPS): uid 0, or a member of `gid`. The error says who was refused.
Status check_peer(int conn, int gid);

// Reads up to and including '\n' (which is dropped), one byte at a time so nothing after the line
// is consumed (the console relay and exec replies follow it). Fails past `max` bytes or at EOF
// before the newline. SCM_RIGHTS fds that arrive with the line are appended to `fds`.
Result<std::string> read_line(int fd, size_t max, std::vector<UniqueFd> *fds = nullptr);

// "<json>\n" in one write (MSG_NOSIGNAL); with fds, they travel with the first byte.
Status send_line(int fd, std::string_view line, const std::vector<int> &fds = {});

int64_t unix_now();

} // namespace bulkhead::daemon
