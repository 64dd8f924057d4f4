#include "namespaces/namespaces.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace bulkhead::ns {

int clone_flag(oci::NamespaceType type) {
  using T = oci::NamespaceType;
  switch (type) {
  case T::Pid:
    return CLONE_NEWPID;
  case T::Network:
    return CLONE_NEWNET;
  case T::Mount:
    return CLONE_NEWNS;
  case T::Ipc:
    return CLONE_NEWIPC;
  case T::Uts:
    return CLONE_NEWUTS;
  case T::User:
    return CLONE_NEWUSER;
  case T::Cgroup:
    return CLONE_NEWCGROUP;
  case T::Time:
    return CLONE_NEWTIME;
  }
  return 0;
}

Result<NamespacePlan> plan_namespaces(const oci::Spec &spec) {
  NamespacePlan plan;
  if (!spec.linux)
    return plan;
  for (const auto &n : spec.linux->namespaces) {
    int flag = clone_flag(n.type);
    if (n.path.empty()) {
      plan.create_flags |= static_cast<unsigned long>(flag);
      continue;
    }
    JoinTarget t;
    t.flag = flag;
    t.path = n.path;
    t.fd.reset(::open(n.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!t.fd)
      return failf_errno("{} namespace path {}", oci::namespace_type_name(n.type), n.path);
    struct statfs sfs {};
    if (::fstatfs(t.fd.get(), &sfs) < 0)
      return failf_errno("statfs {}", n.path);
    if (sfs.f_type != NSFS_MAGIC && sfs.f_type != 0x9fa0 /* procfs, /proc/PID/ns/... */)
      return failf("{} namespace path {}: not a namespace file", oci::namespace_type_name(n.type), n.path);
    int kind = ::ioctl(t.fd.get(), NS_GET_NSTYPE);
    if (kind >= 0 && kind != flag)
      return failf("{} namespace path {}: is a namespace of another type", oci::namespace_type_name(n.type),
                   n.path);
    if (flag == CLONE_NEWUSER)
      plan.joins.insert(plan.joins.begin(), std::move(t));
    else
      plan.joins.push_back(std::move(t));
  }
  return plan;
}

Status join_namespaces(const NamespacePlan &plan, int skip_flags) {
  for (const auto &j : plan.joins) {
    if (j.flag & skip_flags)
      continue;
    if (::setns(j.fd.get(), j.flag) < 0)
      return failf_errno("joining namespace {}", j.path);
  }
  return {};
}

} // namespace bulkhead::ns
