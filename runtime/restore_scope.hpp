// `restore --systemd-cgroup`: the restored container's cgroup as a systemd transient scope, as
// create makes it. systemd only makes a scope around a pid, and stops a scope whose cgroup
// empties, but CRIU needs the cgroup before the tree exists. So a placeholder process (forked by
// this single-threaded runtime) is the scope's first pid and holds it until CRIU has put the tree
// in. It waits in a child cgroup of the scope, so the scope's own cgroup has no process of ours:
// CRIU may enable controllers there for a tree with nested cgroups (systemd inside), which the
// cgroup v2 no-internal-process rule would refuse.
#pragma once

#include <optional>
#include <string>

#include "bulkhead/result.hpp"
#include "cgroups/cgroup.hpp"
#include "cgroups/systemd_scope.hpp"
#include "namespaces/namespace_holder.hpp"
#include "oci/spec.hpp"

namespace bulkhead::runtime {

class RestoreScope {
public:
  // Checks the path, the cgroup2 mount and the bus; nothing exists yet, so a bad slice or a host
  // without systemd fails with nothing to undo.
  static Result<RestoreScope> prepare(const oci::Spec &spec, const std::string &id);

  // Starts the scope with the resources as unit properties (Delegate=yes) around the placeholder,
  // parks it, and returns the scope's cgroup. The caller writes the rest of the resources.
  Result<cgroups::Cgroup> start(const oci::Spec &spec, const std::string &id);
  // CRIU put the tree into the scope: the placeholder and its cgroup go; the scope stays.
  void release_placeholder();
  // A failed restore: the placeholder goes and the unit is stopped (its cgroup with it).
  void abandon();

  const std::string &mount() const { return mount_; }
  const std::string &unit() const { return path_.unit; }
  cgroups::SystemdManager manager() const { return manager_; }

private:
  RestoreScope(cgroups::SystemdManager manager, cgroups::SystemdPath path, std::string mount,
               cgroups::SystemdBus bus)
      : manager_(manager), path_(std::move(path)), mount_(std::move(mount)), bus_(std::move(bus)) {}
  cgroups::SystemdManager manager_;
  cgroups::SystemdPath path_;
  std::string mount_;
  cgroups::SystemdBus bus_;
  std::optional<ns::NamespaceHolder> placeholder_;
  cgroups::Cgroup parking_;
};

} // namespace bulkhead::runtime
