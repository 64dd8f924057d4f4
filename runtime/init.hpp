// The child side of create: everything the container's init does between clone and execve.
// The parent prepares InitArgs completely before cloning; the child only reads it.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "namespaces/namespaces.hpp"
#include "oci/spec.hpp"
#include "security/plan.hpp"

namespace bulkhead::runtime {

struct InitArgs {
  const oci::Spec *spec = nullptr;
  const ns::NamespacePlan *namespaces = nullptr;
  std::string rootfs; // absolute host path
  std::string bundle;
  std::string cgroup_dir; // host path of the container's cgroup ("" without one)
  std::string id;
  int sync_fd = -1;                                 // child end of the handshake socketpair
  int start_listen_fd = -1;                         // `start` connects here
  int console_fd = -1;                              // connected console socket when process.terminal is true
  const security::SecurityPlan *security = nullptr; // compiled by the parent; never null
  int seccomp_listener_fd = -1; // connected to linux.seccomp.listenerPath (SCMP_ACT_NOTIFY)
  // In a user namespace: per spec->mounts entry, the bind source opened by the parent
  // (rootfs::open_bind_sources), -1 for the others; empty otherwise.
  std::vector<int> bind_source_fds;
  pid_t parent_pid = 0;
  bool rootless_parent = false;     // the parent's euid is not 0: it can map only what it may
  bool intermediate = false;        // this process only joins/creates namespaces, then forks init
  bool wait_for_cgroup = false;     // the parent moves us into the cgroup; wait for Go
  bool run_hooks_handshake = false; // prestart/createRuntime/createContainer hooks exist
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0; // fds 3 .. 3+N-1 reach the process (socket-activation fds included)
  int listen_fds = 0;   // the first of them are LISTEN_FDS: set LISTEN_FDS/LISTEN_PID in its env
};

[[noreturn]] void container_init(const InitArgs &args);

} // namespace bulkhead::runtime
