// Which namespaces a container creates and which it joins, split into the parent-side step
// (open the paths to join, so a bad path fails before any process exists) and the child-side
// steps (join, then create).
#pragma once

#include <sched.h>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"

namespace bulkhead::ns {

int clone_flag(oci::NamespaceType type);

struct JoinTarget {
  int flag = 0; // CLONE_NEW*
  std::string path;
  UniqueFd fd;
};

struct NamespacePlan {
  unsigned long create_flags = 0; // every namespace to create, CLONE_NEWTIME included
  std::vector<JoinTarget> joins;  // user namespace first, as setns order requires
  bool joins_any() const { return !joins.empty(); }
  bool creates(int flag) const { return (create_flags & static_cast<unsigned long>(flag)) != 0; }
  bool joins_flag(int flag) const {
    for (const auto &j : joins)
      if (j.flag == flag)
        return true;
    return false;
  }
};

// Parent side: decides create vs join and opens every namespace path (verifying it is an nsfs file
// of the requested type).
Result<NamespacePlan> plan_namespaces(const oci::Spec &spec);

// Child side: setns() into every joined namespace except those in skip_flags.
Status join_namespaces(const NamespacePlan &plan, int skip_flags = 0);

} // namespace bulkhead::ns
