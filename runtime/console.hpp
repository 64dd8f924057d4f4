// Terminals (process.terminal = true). The pty is allocated by init from the container's own devpts
// instance (verified by filesystem magic, so an image cannot redirect it), /dev/console is bound to
// its slave, and the master goes to the caller over the console socket with SCM_RIGHTS, in one
// message, as runc does. `run` in the foreground without a console socket relays the pty itself.
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"

namespace bulkhead::runtime {

// Parent side: a connected stream socket to --console-socket.
Result<UniqueFd> connect_console_socket(const std::string &path);

// Child side: opens a pty from <root>/dev/pts/ptmx, sizes it, sends the master over the console
// socket. Returns the slave.
Result<UniqueFd> open_pty(int root_fd, const oci::Process &process, int console_socket);

// Init, before pivot_root: open_pty and bind /dev/console to the slave.
Result<UniqueFd> setup_console(int root_fd, const oci::Process &process, int console_socket);

// Child side, last step before Ready: new session, slave as controlling terminal and stdio.
Status make_controlling_terminal(UniqueFd slave);

// Foreground run: relays stdin -> master and master -> stdout (raw mode when stdin is a tty,
// window size kept in sync) until the container's side of the pty is closed. Returns true when it
// reaped init on the way (its wait status is then in *exit_status).
bool relay_terminal(int master, int signal_fd, pid_t init_pid, int *exit_status);

} // namespace bulkhead::runtime
