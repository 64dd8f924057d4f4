#include "cgroups/resources.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "cgroups/convert.hpp"
#include "cgroups/device_filter.hpp"

namespace bulkhead::cgroups {

namespace {

// Controllers a kernel may offer; a `unified` key with another prefix can only be a typo.
const std::set<std::string> kKnownControllers = {"cpu",  "cpuset", "io",   "memory",    "hugetlb",
                                                 "pids", "rdma",   "misc", "perf_event"};

bool exists(const std::string &path) { return ::access(path.c_str(), F_OK) == 0; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// The directories from the mount point down to the parent of `cg`.
std::vector<std::string> ancestors(const Cgroup &cg) {
  const std::string &mount = cg.mount();
  std::vector<std::string> out{mount};
  const std::string &path = cg.path();
  size_t pos = 1;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos)
      break; // the last component is the leaf itself
    if (next > pos)
      out.push_back(mount + path.substr(0, next));
    pos = next + 1;
  }
  return out;
}

Status write_interface_file(const std::string &path, const std::string &value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd)
    return fail_errno("opening");
  // One write(): cgroup files take a whole value per call.
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0)
    return fail_errno("writing");
  if (static_cast<size_t>(n) != value.size())
    return fail("short write", EIO);
  return {};
}

Status check_before_update(const Cgroup &cg, const oci::MemoryResources &m) {
  if (!m.check_before_update.value_or(false) || m.limit.value_or(0) <= 0)
    return {};
  std::string path = cg.full_path() + "/memory.current";
  std::string usage = trim(BH_TRY(read_file(path)));
  if (std::stoll(usage) > *m.limit)
    return failf("linux.resources.memory.limit: {} is below the current usage {} ({}) and "
                 "checkBeforeUpdate is set",
                 *m.limit, usage, path);
  return {};
}

} // namespace

std::set<std::string> parse_controller_list(const std::string &text) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find_first_not_of(" \n\t", pos);
    if (start == std::string::npos)
      break;
    size_t end = text.find_first_of(" \n\t", start);
    if (end == std::string::npos)
      end = text.size();
    out.insert(text.substr(start, end - start));
    pos = end;
  }
  return out;
}

void enable_all_controllers(const Cgroup &cg) {
  for (const auto &dir : ancestors(cg)) {
    auto available = read_file(dir + "/cgroup.controllers");
    auto enabled = read_file(dir + "/cgroup.subtree_control");
    if (!available || !enabled)
      continue;
    auto on = parse_controller_list(*enabled);
    for (const auto &c : parse_controller_list(*available))
      if (!on.count(c))
        (void)write_interface_file(dir + "/cgroup.subtree_control", "+" + c);
  }
}

Status enable_controllers(const Cgroup &cg, const std::set<std::string> &controllers) {
  for (const auto &dir : ancestors(cg)) {
    auto available = parse_controller_list(BH_TRY(read_file(dir + "/cgroup.controllers")));
    auto enabled = parse_controller_list(BH_TRY(read_file(dir + "/cgroup.subtree_control")));
    for (const auto &c : controllers) {
      if (enabled.count(c) || !available.count(c))
        continue;
      std::string file = dir + "/cgroup.subtree_control";
      auto r = write_interface_file(file, "+" + c);
      if (!r) {
        int code = r.error().code;
        std::string why = code == EBUSY ? " (it has processes of its own, and cgroup v2 gives controllers "
                                          "only to cgroups whose processes live in leaves)"
                                        : "";
        return fail(fmt::format("enabling the {} controller in {}{}", c, file, why), code);
      }
    }
  }
  return {};
}

Status apply_resources(const Cgroup &cg, const oci::Resources &r, ApplyMode mode) {
  // Converting once without host details tells which controllers are involved.
  auto writes = BH_TRY(convert_resources(r));
  if (writes.empty())
    return {};
  const std::string dir = cg.full_path();
  std::set<std::string> root_controllers;
  if (auto root = read_file(ancestors(cg).front() + "/cgroup.controllers"))
    root_controllers = parse_controller_list(*root);
  std::set<std::string> needed;
  for (const auto &w : writes)
    if (w.controller != "cgroup" &&
        (kKnownControllers.count(w.controller) || root_controllers.count(w.controller)))
      needed.insert(w.controller);
  // The root lacks it: nothing below can have it, and on a v1/v2 hybrid host (the only kind where
  // cgroup2 sits at /sys/fs/cgroup/unified) it is bound to cgroup v1, which is out of scope.
  for (const auto &w : writes) {
    if (!needed.count(w.controller) || root_controllers.count(w.controller))
      continue;
    bool hybrid = cg.mount().ends_with("/unified");
    return failf("{}: this host has no cgroup v2 {} controller ({}/cgroup.controllers: {:?}){}", w.field,
                 w.controller, cg.mount(), trim(read_file(cg.mount() + "/cgroup.controllers").value_or("")),
                 hybrid ? "; its cgroups are a v1/v2 hybrid, where controllers belong to cgroup v1, and "
                          "bulkhead supports cgroup v2 only: boot with the unified hierarchy "
                          "(systemd.unified_cgroup_hierarchy=1 on the kernel command line)"
                        : "");
  }
  BH_CHECK(enable_controllers(cg, needed));

  std::string listed = BH_TRY(read_file(dir + "/cgroup.controllers"));
  auto available = parse_controller_list(listed);
  for (const auto &w : writes) {
    if (!needed.count(w.controller) || available.count(w.controller))
      continue;
    return failf("{}: the {} controller is not available in {} (cgroup.controllers: {:?}; {} needs it)",
                 w.field, w.controller, dir, trim(listed), w.file);
  }

  HostFeatures host;
  host.bfq = exists(dir + "/io.bfq.weight");
  for (const auto &h : r.hugepage_limits)
    if (exists(dir + "/hugetlb." + h.page_size + ".rsvd.max"))
      host.hugetlb_rsvd = true;
  writes = BH_TRY(convert_resources(r, host));

  if (mode == ApplyMode::Update && r.memory)
    BH_CHECK(check_before_update(cg, *r.memory));
  for (const auto &w : writes) {
    std::string path = dir + "/" + w.file;
    auto written = write_interface_file(path, w.value);
    if (written)
      continue;
    int code = written.error().code;
    if (code == ENOENT && w.skip_if_absent)
      continue;
    if (code == ENOENT)
      return fail(fmt::format("{}: {} is not a cgroup interface file", w.field, path), code);
    return fail(fmt::format("{}: {} {:?} to {}", w.field, written.error().message, w.value, path), code);
  }
  return {};
}

std::vector<oci::DeviceCgroupRule>
effective_device_rules(const std::vector<oci::DeviceCgroupRule> &spec_rules) {
  std::vector<oci::DeviceCgroupRule> out = spec_rules;
  auto allow = [&out](std::string type, std::optional<int64_t> major, std::optional<int64_t> minor,
                      std::string access) {
    out.push_back(oci::DeviceCgroupRule{true, std::move(type), major, minor, std::move(access)});
  };
  allow("c", std::nullopt, std::nullopt, "m"); // mknod of any node; opening is what is guarded
  allow("b", std::nullopt, std::nullopt, "m");
  for (auto [major, minor] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}, {10, 200}})
    allow("c", major, minor, "rwm");
  allow("c", 136, std::nullopt, "rwm"); // /dev/pts/*
  return out;
}

std::vector<std::string> device_rule_warnings(const std::vector<oci::DeviceCgroupRule> &rules) {
  std::vector<std::string> out;
  for (size_t i = 0; i < rules.size(); ++i)
    if (rules[i].access.find_first_not_of("rwm") != std::string::npos)
      out.push_back(fmt::format("linux.resources.devices[{}].access: {:?}: letters other than r, w and m "
                                "are ignored",
                                i, rules[i].access));
  return out;
}

Status setup_container_cgroup(const Cgroup &cg, const oci::Linux &linux, bool device_filter) {
  static const oci::Resources none;
  const oci::Resources &r = linux.resources ? *linux.resources : none;
  enable_all_controllers(cg);
  BH_CHECK(apply_resources(cg, r, ApplyMode::Create));
  if (!device_filter)
    return {};
  auto fd = BH_TRY(cg.open_dir());
  return attach_device_filter(fd.get(), cg.full_path(), effective_device_rules(r.devices));
}

bool requests_controllers(const std::optional<oci::Resources> &r) {
  if (!r)
    return false;
  auto writes = convert_resources(*r);
  return !writes || !writes->empty();
}

} // namespace bulkhead::cgroups
