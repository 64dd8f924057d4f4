// A process alone in a new namespace of one kind, kept until the holder goes: what makes a
// namespace before anything runs in it (a user namespace with given maps for an idmapped mount, a
// network namespace whose NICs are set up before CRIU restores a tree into it). With no namespace
// (clone_flag 0, ns_name nullptr) it is a placeholder process: what holds a systemd scope, which is
// only made with a pid in it, until CRIU has restored a tree into the scope's cgroup.
#pragma once

#include <sys/types.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::ns {

class NamespaceHolder {
public:
  // Forks a child that unshares `clone_flag` (CLONE_NEWUSER, CLONE_NEWNET, ...), runs `setup` in
  // the new namespace if given (0 or an errno), reports, and waits to be killed; it keeps no fd of
  // ours but its report pipe and dies with us (PDEATHSIG). `ns_name` is the /proc/PID/ns entry
  // ("user", "net") opened once the child reported success; nullptr opens none (fd() is -1).
  // Single-threaded callers only (the runtime's create and restore, bulkhead-monitor).
  static Result<NamespaceHolder> spawn(int clone_flag, const char *ns_name, int (*setup)() = nullptr);

  NamespaceHolder(NamespaceHolder &&o) noexcept;
  NamespaceHolder &operator=(NamespaceHolder &&) = delete;
  ~NamespaceHolder(); // SIGKILLs and reaps the child: the namespace lives on in what holds its fd

  pid_t pid() const { return pid_; }
  int fd() const { return fd_.get(); }
  UniqueFd take_fd() { return std::move(fd_); }

private:
  NamespaceHolder() = default;
  pid_t pid_ = 0;
  UniqueFd fd_;
};

} // namespace bulkhead::ns
