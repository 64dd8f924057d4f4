#include "runtime/restore_scope.hpp"

#include "cgroups/resources.hpp"
#include "runtime/rootless.hpp"

namespace bulkhead::runtime {

namespace {
// Below the scope's cgroup; gone before the restored container is reported.
constexpr const char *kParking = "/bulkhead-restore-placeholder";
} // namespace

Result<RestoreScope> RestoreScope::prepare(const oci::Spec &spec, const std::string &id) {
  const cgroups::SystemdManager manager = systemd_manager(running_rootless());
  auto path = BH_TRY(cgroups::parse_systemd_path(spec.linux->cgroups_path, id, manager));
  auto mount = BH_TRY(context(cgroups::cgroup2_mount(), "--systemd-cgroup"));
  auto bus = BH_TRY(cgroups::SystemdBus::connect(manager));
  return RestoreScope(manager, std::move(path), std::move(mount), std::move(bus));
}

Result<cgroups::Cgroup> RestoreScope::start(const oci::Spec &spec, const std::string &id) {
  oci::Resources none;
  auto props = BH_TRY(cgroups::systemd_properties(spec.linux->resources ? *spec.linux->resources : none));
  placeholder_.emplace(BH_TRY(ns::NamespaceHolder::spawn(0, nullptr)));
  auto started =
      bus_.start_scope(path_, placeholder_->pid(), props, "bulkhead container " + id + " (restored)");
  if (!started) {
    placeholder_.reset();
    return tl::unexpected(started.error());
  }
  auto parked = [&]() -> Status {
    parking_ = BH_TRY(cgroups::Cgroup::create(mount_, *started + kParking));
    return parking_.add_process(placeholder_->pid());
  }();
  if (!parked) {
    abandon();
    return tl::unexpected(
        with_context(parked.error(), "parking the restore placeholder of scope " + path_.unit));
  }
  return cgroups::Cgroup(mount_, *started);
}

void RestoreScope::release_placeholder() {
  placeholder_.reset(); // SIGKILL and reap
  if (!parking_.empty_path())
    (void)parking_.destroy();
  parking_ = cgroups::Cgroup();
}

void RestoreScope::abandon() {
  release_placeholder();
  (void)bus_.stop_unit(path_.unit);
}

} // namespace bulkhead::runtime
