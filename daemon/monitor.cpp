// clang-format off
// bulkhead-monitor: the parent of one system container's init. bulkheadd is multithreaded and
// never clones; it posix_spawns one monitor per container start and watches it through a pidfd.
// The monitor survives daemon restarts (setsid; SIGTERM ignored: containers are stopped by
// signalling init with Runtime::kill, never by killing the monitor).
//
// Lifecycle:
//   1. setup (monitor_setup.cpp): read the launch line on fd 3, mount the overlay, write
//      bundle/config.json (spec_builder.cpp), Runtime create (pty master over a socketpair),
//      start, write state_file, reply on fd 3 and close it. Any failure: Revert, error reply, exit 1.
//   2. re-exec of /proc/self/exe as `bulkhead-monitor --watch <json>` with the pty master,
//      listener, init pidfd and log fd inherited: the idle process keeps no heap or pages of setup.
//   3. watch (monitor_loop.cpp): poll loop until init exits; then Runtime::remove(force), unmount
//      the overlay, unlink the socket, write exit_file LAST, exit 0.
//
// fd 3 (daemon <-> monitor, one line each way):
// | dir | line                                                                                  |
// |-----|---------------------------------------------------------------------------------------|
// | ->  | {"config":<ContainerConfig>,"lower","upper","work","rootfs","bundle","oci_root",       |
// |     |  "cgroups_path","init_path","lxcfs_dir","socket","log","log_max","state_file",       |
// |     |  "exit_file", "restore_images"?, "systemd_cgroup"?}  (paths absolute; cgroups_path   |
// |     |  is "SLICE:PREFIX:NAME" with systemd_cgroup true; cgroups_path/lxcfs_dir may be "";  |
// |     |  log_max >= 4096; restore_images: restore from this CRIU image directory instead of  |
// |     |  create + start, into a fresh network namespace whose pid is sent as "created")      |
// | <-  | only when config.nets is not empty, after Runtime create (init exists, blocked):     |
// |     | {"created":true,"pid":N}; the daemon sets up the NICs in init's netns over netlink   |
// | ->  | {"start":true} | {"abort":"..."} (the monitor undoes the container and fails)      |
// | <-  | {"ok":true,"pid":N,"init_start_time":T} | {"ok":false,"error":"..."}                   |
//
// Files (written temp + fsync + rename + directory fsync):
//   state_file  {"monitor_pid","monitor_start_time","init_pid","init_start_time","started_unix"}
//               (start times: field 22 of /proc/PID/stat), before the reply
//   exit_file   {"code","signal","at","checkpointed"?}: exited: code = status, signal = 0; killed by signal N:
//               code = 128+N, signal = N. A poweroff/halt inside the container (reboot(2) in its
//               pid namespace) kills init with SIGINT: signal 2, code 130; a reboot: SIGHUP (1, 129).
//   log         console output; at log_max bytes renamed to log.1 and started afresh
//
// Control socket (`socket`, mode 0660, group bulkhead if it exists; every connection is checked
// with SO_PEERCRED/SO_PEERGROUPS: uid 0 or group bulkhead, else {"error":...} and close).
// One request line per connection:
// | request                                   | fds | reply                                          |
// |-------------------------------------------|-----|------------------------------------------------|
// | {"op":"status"}                           | 0   | {"monitor_pid","monitor_start_time","init_pid",|
// |                                           |     |  "init_start_time","started_unix"}, close      |
// | {"op":"console"}                          | 0   | {"ok":true}, then raw bytes both ways with the |
// |                                           |     | console pty until either side closes. Any      |
// |                                           |     | number of clients; all see the output; input   |
// |                                           |     | from each goes to the pty; a slow client loses |
// |                                           |     | output instead of stalling the container       |
// | {"op":"exec","args":[..],"env":[..],      | 3   | stdin, stdout, stderr via SCM_RIGHTS with the  |
// |  "user":"uid[:gid]|name[:group]","cwd",   |     | line. A forked worker runs Runtime::exec (tty: |
// |  "tty":bool,"rows":N,"cols":N}            |     | a new pty relayed to the fds) and writes       |
// |                                           |     | {"exit":N} (128+N if killed by signal N) or    |
// |                                           |     | {"error":"..."} when it ends, then closes.     |
// |                                           |     | With tty, the client may send {"op":"resize"}  |
// |                                           |     | lines meanwhile: the worker gets SIGWINCH and  |
// |                                           |     | copies stdin's window size to the new pty      |
// | {"op":"checkpoint","images":DIR,          | 0   | A forked worker dumps the container with CRIU  |
// |  "stop":bool,"pre_dump":bool,             |     | (monitor_checkpoint.cpp) into DIR and replies  |
// |  "parent":PDIR,"wait_for_go":bool}        |     | {"ok":true} or {"error":"..."}, close. One at a|
// |                                           |     | time. stop: CRIU kills the tree after the dump;|
// |                                           |     | exit_file then has "checkpointed":true.        |
// |                                           |     | wait_for_go: once CRIU is up the worker replies|
// |                                           |     | {"ready":true} and dumps after the client's    |
// | {"op":"go"} or {"op":"go","images":DIR,   |     | line; EOF instead: it exits, nothing dumped.   |
// |  "parent":PDIR} (same connection)         |     | A go's DIR and PDIR (PDIR "": none) replace the|
// |                                           |     | request's: a worker started ahead of a dump    |
// |                                           |     | whose images are named only at its go          |
// | anything else                             |     | {"error":"..."}, close                         |
// clang-format on
#include "daemon/monitor.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

#include "bulkhead/io.hpp"

namespace bulkhead::daemon {

namespace {

void warn(const std::string &m) { (void)write_all(STDERR_FILENO, m + "\n", "stderr"); }

void common_process_setup() {
  // Our memory holds the pty master and the control socket; nobody may ptrace or read it.
  ::prctl(PR_SET_DUMPABLE, 0);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
}

// Replaces the process image; returns only when execve failed.
void reexec_watch(const WatchState &w) {
  for (int fd : {w.pty_master, w.listen_fd, w.init_pidfd, w.log_fd})
    ::fcntl(fd, F_SETFD, 0);
  std::string state = watch_to_json(w).dump();
  char arg0[] = "bulkhead-monitor", arg1[] = "--watch";
  char *argv[] = {arg0, arg1, state.data(), nullptr};
  ::execv("/proc/self/exe", argv);
  warn(fmt::format("re-exec into watch mode: {}; watching from the setup process", std::strerror(errno)));
  for (int fd : {w.pty_master, w.listen_fd, w.init_pidfd, w.log_fd})
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

} // namespace

int monitor_main(int argc, char **argv) {
  common_process_setup();
  if (argc == 3 && std::strcmp(argv[1], "--watch") == 0) {
    auto j = nlohmann::json::parse(argv[2], nullptr, false);
    auto w = watch_from_json(j);
    if (!w) {
      warn(w.error().text());
      return 1;
    }
    return watch_container(*w);
  }
  if (argc != 1) {
    warn("usage: bulkhead-monitor (started by bulkheadd with the launch socket on fd 3)");
    return 2;
  }
  if (::fcntl(3, F_GETFD) < 0) {
    warn("bulkhead-monitor: fd 3 (the launch socket from bulkheadd) is not open");
    return 2;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  ::setsid();
  auto w = setup_container(3);
  ::close(3);
  if (!w)
    return 1;
  const char *reexec = ::getenv("BULKHEAD_MONITOR_REEXEC"); // "0": measure without it
  if (!reexec || std::strcmp(reexec, "0") != 0)
    reexec_watch(*w);
  return watch_container(*w);
}

} // namespace bulkhead::daemon
