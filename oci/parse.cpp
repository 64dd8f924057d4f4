#include "oci/parse.hpp"

#include <concepts>
#include <utility>

#include <fmt/format.h>

#include "bulkhead/io.hpp"

namespace bulkhead::oci {

namespace {

using nlohmann::json;

std::string child(const std::string &path, std::string_view key) {
  if (path.empty())
    return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string index(const std::string &path, size_t i) { return fmt::format("{}[{}]", path, i); }

// Map keys are quoted, not dotted: sysctl names and annotation keys contain dots themselves.
std::string keyed(const std::string &path, const std::string &key) {
  return fmt::format("{}[{:?}]", path, key);
}

tl::unexpected<Error> bad(const std::string &path, std::string_view rule) {
  return failf("{}: {}", path, rule);
}

// runc decodes with Go's encoding/json, where null is the same as an absent member.
const json *member(const json &obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return nullptr;
  return &*it;
}

template <class T>
concept Integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>;

// One overload per model type; all are declared up front so the generic ones below can reach them.
Status get(const json &v, const std::string &path, std::string &out);
Status get(const json &v, const std::string &path, bool &out);
template <Integer T> Status get(const json &v, const std::string &path, T &out);
Status get(const json &v, const std::string &path, std::vector<std::string> &out);
Status get(const json &v, const std::string &path, std::map<std::string, std::string> &out);
template <class T> Status get(const json &v, const std::string &path, std::optional<T> &out);
template <class T> Status get(const json &v, const std::string &path, std::vector<T> &out);
template <class T> Status get(const json &v, const std::string &path, std::map<std::string, T> &out);
Status get(const json &v, const std::string &path, ConsoleSize &out);
Status get(const json &v, const std::string &path, User &out);
Status get(const json &v, const std::string &path, Rlimit &out);
Status get(const json &v, const std::string &path, Capabilities &out);
Status get(const json &v, const std::string &path, IoPriority &out);
Status get(const json &v, const std::string &path, Scheduler &out);
Status get(const json &v, const std::string &path, Process &out);
Status get(const json &v, const std::string &path, Root &out);
Status get(const json &v, const std::string &path, IdMapping &out);
Status get(const json &v, const std::string &path, Mount &out);
Status get(const json &v, const std::string &path, Hook &out);
Status get(const json &v, const std::string &path, Hooks &out);
Status get(const json &v, const std::string &path, Namespace &out);
Status get(const json &v, const std::string &path, Device &out);
Status get(const json &v, const std::string &path, DeviceCgroupRule &out);
Status get(const json &v, const std::string &path, MemoryResources &out);
Status get(const json &v, const std::string &path, CpuResources &out);
Status get(const json &v, const std::string &path, PidsResources &out);
Status get(const json &v, const std::string &path, WeightDevice &out);
Status get(const json &v, const std::string &path, ThrottleDevice &out);
Status get(const json &v, const std::string &path, BlockIoResources &out);
Status get(const json &v, const std::string &path, HugepageLimit &out);
Status get(const json &v, const std::string &path, NetworkPriority &out);
Status get(const json &v, const std::string &path, NetworkResources &out);
Status get(const json &v, const std::string &path, RdmaLimit &out);
Status get(const json &v, const std::string &path, Resources &out);
Status get(const json &v, const std::string &path, SeccompArg &out);
Status get(const json &v, const std::string &path, SeccompSyscall &out);
Status get(const json &v, const std::string &path, Seccomp &out);
Status get(const json &v, const std::string &path, Personality &out);
Status get(const json &v, const std::string &path, TimeOffset &out);
Status get(const json &v, const std::string &path, IntelRdt &out);
Status get(const json &v, const std::string &path, MemoryPolicy &out);
Status get(const json &v, const std::string &path, Linux &out);
Status get(const json &v, const std::string &path, Spec &out);

// Reads the members of one JSON object and keeps the first error, so each parser below is a plain
// list of (JSON name, model field) pairs. Members not listed are ignored, as the spec requires.
class Fields {
public:
  Fields(const json &v, std::string path) : v_(v), path_(std::move(path)) {
    if (!v_.is_object())
      status_ = bad(path_, "must be an object");
  }

  template <class T> void operator()(std::string_view key, T &out) {
    if (status_)
      if (const json *m = member(v_, key))
        status_ = get(*m, child(path_, key), out);
  }

  void required(std::string_view key) {
    if (status_ && !member(v_, key))
      status_ = bad(child(path_, key), "is required");
  }

  Status status() { return std::move(status_); }

private:
  const json &v_;
  std::string path_;
  Status status_;
};

Status get(const json &v, const std::string &path, std::string &out) {
  if (!v.is_string())
    return bad(path, "must be a string");
  out = v.get<std::string>();
  return {};
}

Status get(const json &v, const std::string &path, bool &out) {
  if (!v.is_boolean())
    return bad(path, "must be a boolean");
  out = v.get<bool>();
  return {};
}

// Floats and out-of-range values are rejected rather than truncated, as Go's decoder does.
template <Integer T> Status get(const json &v, const std::string &path, T &out) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (std::in_range<T>(u)) {
      out = static_cast<T>(u);
      return {};
    }
  } else if (v.is_number_integer()) {
    auto s = v.get<int64_t>();
    if (std::in_range<T>(s)) {
      out = static_cast<T>(s);
      return {};
    }
  }
  return bad(path, fmt::format("must be {} {}-bit integer", std::is_signed_v<T> ? "a" : "an unsigned",
                               sizeof(T) * 8));
}

Status get(const json &v, const std::string &path, std::vector<std::string> &out) {
  if (!v.is_array())
    return bad(path, "must be an array of strings");
  out.clear();
  for (const auto &e : v) {
    if (!e.is_string())
      return bad(path, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return {};
}

Status get(const json &v, const std::string &path, std::map<std::string, std::string> &out) {
  if (!v.is_object())
    return bad(path, "must be an object of strings");
  out.clear();
  for (const auto &[key, value] : v.items()) {
    if (!value.is_string())
      return bad(path, "must be an object of strings");
    out[key] = value.get<std::string>();
  }
  return {};
}

template <class T> Status get(const json &v, const std::string &path, std::optional<T> &out) {
  T value{};
  BH_CHECK(get(v, path, value));
  out = std::move(value);
  return {};
}

template <class T> Status get(const json &v, const std::string &path, std::vector<T> &out) {
  if (!v.is_array())
    return bad(path, "must be an array");
  out.clear();
  for (size_t i = 0; i < v.size(); ++i)
    BH_CHECK(get(v[i], index(path, i), out.emplace_back()));
  return {};
}

template <class T> Status get(const json &v, const std::string &path, std::map<std::string, T> &out) {
  if (!v.is_object())
    return bad(path, "must be an object");
  out.clear();
  for (const auto &[key, value] : v.items())
    BH_CHECK(get(value, keyed(path, key), out[key]));
  return {};
}

Status get(const json &v, const std::string &path, ConsoleSize &c) {
  Fields f(v, path);
  f("height", c.height);
  f("width", c.width);
  return f.status();
}

Status get(const json &v, const std::string &path, User &u) {
  Fields f(v, path);
  f("uid", u.uid);
  f("gid", u.gid);
  f("umask", u.umask);
  f("additionalGids", u.additional_gids);
  f("username", u.username);
  return f.status();
}

Status get(const json &v, const std::string &path, Rlimit &r) {
  Fields f(v, path);
  f.required("type");
  f("type", r.type);
  f("soft", r.soft);
  f("hard", r.hard);
  return f.status();
}

Status get(const json &v, const std::string &path, Capabilities &c) {
  Fields f(v, path);
  f("bounding", c.bounding);
  f("effective", c.effective);
  f("inheritable", c.inheritable);
  f("permitted", c.permitted);
  f("ambient", c.ambient);
  return f.status();
}

Status get(const json &v, const std::string &path, IoPriority &p) {
  Fields f(v, path);
  f("class", p.klass);
  f("priority", p.priority);
  return f.status();
}

Status get(const json &v, const std::string &path, Scheduler &s) {
  Fields f(v, path);
  f("policy", s.policy);
  f("nice", s.nice);
  f("priority", s.priority);
  f("flags", s.flags);
  f("runtime", s.runtime);
  f("deadline", s.deadline);
  f("period", s.period);
  return f.status();
}

Status get(const json &v, const std::string &path, Process &p) {
  Fields f(v, path);
  f("terminal", p.terminal);
  f("consoleSize", p.console_size);
  f("cwd", p.cwd);
  f("env", p.env);
  f("args", p.args);
  f("commandLine", p.command_line);
  f("user", p.user);
  f("capabilities", p.capabilities);
  f("rlimits", p.rlimits);
  f("noNewPrivileges", p.no_new_privileges);
  f("apparmorProfile", p.apparmor_profile);
  f("oomScoreAdj", p.oom_score_adj);
  f("selinuxLabel", p.selinux_label);
  f("ioPriority", p.io_priority);
  f("scheduler", p.scheduler);
  BH_CHECK(f.status());
  if (const json *affinity = member(v, "execCPUAffinity")) {
    Fields a(*affinity, child(path, "execCPUAffinity"));
    a("initial", p.exec_cpu_affinity_initial_raw);
    a("final", p.exec_cpu_affinity_final_raw);
    return a.status();
  }
  return {};
}

Status get(const json &v, const std::string &path, Root &r) {
  Fields f(v, path);
  f("path", r.path);
  f("readonly", r.readonly);
  return f.status();
}

Status get(const json &v, const std::string &path, IdMapping &m) {
  Fields f(v, path);
  f("containerID", m.container_id);
  f("hostID", m.host_id);
  f("size", m.size);
  return f.status();
}

Status get(const json &v, const std::string &path, Mount &m) {
  Fields f(v, path);
  f("destination", m.destination);
  f("type", m.type);
  f("source", m.source);
  f("options", m.options);
  f("uidMappings", m.uid_mappings);
  f("gidMappings", m.gid_mappings);
  return f.status();
}

Status get(const json &v, const std::string &path, Hook &h) {
  Fields f(v, path);
  f("path", h.path);
  f("args", h.args);
  f("env", h.env);
  f("timeout", h.timeout);
  return f.status();
}

// The one table of hook names, shared by the config parser and the state-file round trip.
constexpr std::pair<const char *, std::vector<Hook> Hooks::*> kHookLists[] = {
    {"prestart", &Hooks::prestart},
    {"createRuntime", &Hooks::create_runtime},
    {"createContainer", &Hooks::create_container},
    {"startContainer", &Hooks::start_container},
    {"poststart", &Hooks::poststart},
    {"poststop", &Hooks::poststop},
};

Status get(const json &v, const std::string &path, Hooks &h) {
  Fields fields(v, path);
  for (const auto &[name, list] : kHookLists)
    fields(name, h.*list);
  return fields.status();
}

// Unknown types are rejected here because the model holds an enum; the message is the one
// validate_spec would give, so callers see the same text whichever layer catches it.
Status get(const json &v, const std::string &path, Namespace &ns) {
  std::string type;
  Fields f(v, path);
  f.required("type");
  f("type", type);
  f("path", ns.path);
  BH_CHECK(f.status());
  auto t = namespace_type_from_name(type);
  if (!t)
    return failf("{}: unknown namespace {:?}", child(path, "type"), type);
  ns.type = *t;
  return {};
}

Status get(const json &v, const std::string &path, Device &d) {
  std::string type;
  Fields f(v, path);
  f("path", d.path);
  f("type", type);
  f("major", d.major);
  f("minor", d.minor);
  f("fileMode", d.file_mode);
  f("uid", d.uid);
  f("gid", d.gid);
  BH_CHECK(f.status());
  // Single-letter values are checked by validate_spec; anything longer cannot be held in the model.
  if (type.size() != 1)
    return bad(child(path, "type"), R"(must be one of "c", "b", "u", "p")");
  d.type = type[0];
  return {};
}

Status get(const json &v, const std::string &path, DeviceCgroupRule &d) {
  Fields f(v, path);
  f("allow", d.allow);
  f("type", d.type);
  f("major", d.major);
  f("minor", d.minor);
  f("access", d.access);
  return f.status();
}

Status get(const json &v, const std::string &path, MemoryResources &m) {
  Fields f(v, path);
  f("limit", m.limit);
  f("reservation", m.reservation);
  f("swap", m.swap);
  f("kernel", m.kernel);
  f("kernelTCP", m.kernel_tcp);
  f("swappiness", m.swappiness);
  f("disableOOMKiller", m.disable_oom_killer);
  f("useHierarchy", m.use_hierarchy);
  f("checkBeforeUpdate", m.check_before_update);
  return f.status();
}

Status get(const json &v, const std::string &path, CpuResources &c) {
  Fields f(v, path);
  f("shares", c.shares);
  f("quota", c.quota);
  f("burst", c.burst);
  f("period", c.period);
  f("realtimeRuntime", c.realtime_runtime);
  f("realtimePeriod", c.realtime_period);
  f("cpus", c.cpus);
  f("mems", c.mems);
  f("idle", c.idle);
  return f.status();
}

Status get(const json &v, const std::string &path, PidsResources &p) {
  Fields f(v, path);
  f("limit", p.limit);
  return f.status();
}

Status get(const json &v, const std::string &path, WeightDevice &w) {
  Fields f(v, path);
  f("major", w.major);
  f("minor", w.minor);
  f("weight", w.weight);
  f("leafWeight", w.leaf_weight);
  return f.status();
}

Status get(const json &v, const std::string &path, ThrottleDevice &t) {
  Fields f(v, path);
  f("major", t.major);
  f("minor", t.minor);
  f("rate", t.rate);
  return f.status();
}

Status get(const json &v, const std::string &path, BlockIoResources &b) {
  Fields f(v, path);
  f("weight", b.weight);
  f("leafWeight", b.leaf_weight);
  f("weightDevice", b.weight_device);
  f("throttleReadBpsDevice", b.throttle_read_bps_device);
  f("throttleWriteBpsDevice", b.throttle_write_bps_device);
  f("throttleReadIOPSDevice", b.throttle_read_iops_device);
  f("throttleWriteIOPSDevice", b.throttle_write_iops_device);
  return f.status();
}

Status get(const json &v, const std::string &path, HugepageLimit &h) {
  Fields f(v, path);
  f("pageSize", h.page_size);
  f("limit", h.limit);
  return f.status();
}

Status get(const json &v, const std::string &path, NetworkPriority &p) {
  Fields f(v, path);
  f("name", p.name);
  f("priority", p.priority);
  return f.status();
}

Status get(const json &v, const std::string &path, NetworkResources &n) {
  Fields f(v, path);
  f("classID", n.class_id);
  f("priorities", n.priorities);
  return f.status();
}

Status get(const json &v, const std::string &path, RdmaLimit &r) {
  Fields f(v, path);
  f("hcaHandles", r.hca_handles);
  f("hcaObjects", r.hca_objects);
  return f.status();
}

Status get(const json &v, const std::string &path, Resources &r) {
  Fields f(v, path);
  f("devices", r.devices);
  f("memory", r.memory);
  f("cpu", r.cpu);
  f("pids", r.pids);
  f("blockIO", r.block_io);
  f("hugepageLimits", r.hugepage_limits);
  f("network", r.network);
  f("rdma", r.rdma);
  f("unified", r.unified);
  return f.status();
}

Status get(const json &v, const std::string &path, SeccompArg &a) {
  Fields f(v, path);
  f("index", a.index);
  f("value", a.value);
  f("valueTwo", a.value_two);
  f("op", a.op);
  return f.status();
}

Status get(const json &v, const std::string &path, SeccompSyscall &s) {
  Fields f(v, path);
  f("names", s.names);
  f("action", s.action);
  f("errnoRet", s.errno_ret);
  f("args", s.args);
  return f.status();
}

Status get(const json &v, const std::string &path, Seccomp &s) {
  Fields f(v, path);
  f("defaultAction", s.default_action);
  f("defaultErrnoRet", s.default_errno_ret);
  f("architectures", s.architectures);
  f("flags", s.flags);
  f("listenerPath", s.listener_path);
  f("listenerMetadata", s.listener_metadata);
  f("syscalls", s.syscalls);
  return f.status();
}

Status get(const json &v, const std::string &path, Personality &p) {
  Fields f(v, path);
  f("domain", p.domain);
  f("flags", p.flags);
  return f.status();
}

Status get(const json &v, const std::string &path, TimeOffset &t) {
  Fields f(v, path);
  f("secs", t.secs);
  f("nanosecs", t.nanosecs);
  return f.status();
}

Status get(const json &v, const std::string &path, IntelRdt &r) {
  Fields f(v, path);
  f("closID", r.clos_id);
  f("l3CacheSchema", r.l3_cache_schema);
  f("memBwSchema", r.mem_bw_schema);
  f("schemata", r.schemata);
  f("enableCMT", r.enable_cmt);
  f("enableMBM", r.enable_mbm);
  return f.status();
}

Status get(const json &v, const std::string &path, MemoryPolicy &m) {
  Fields f(v, path);
  f("mode", m.mode);
  f("nodes", m.nodes);
  f("flags", m.flags);
  return f.status();
}

Status get(const json &v, const std::string &path, Linux &l) {
  Fields f(v, path);
  f("namespaces", l.namespaces);
  f("uidMappings", l.uid_mappings);
  f("gidMappings", l.gid_mappings);
  f("timeOffsets", l.time_offsets);
  f("devices", l.devices);
  f("cgroupsPath", l.cgroups_path);
  f("resources", l.resources);
  f("rootfsPropagation", l.rootfs_propagation);
  f("seccomp", l.seccomp);
  f("sysctl", l.sysctl);
  f("maskedPaths", l.masked_paths);
  f("readonlyPaths", l.readonly_paths);
  f("mountLabel", l.mount_label);
  f("intelRdt", l.intel_rdt);
  f("personality", l.personality);
  f("memoryPolicy", l.memory_policy);
  return f.status();
}

Status get(const json &v, const std::string &path, Spec &s) {
  Fields f(v, path);
  f("ociVersion", s.oci_version);
  f("process", s.process);
  f("root", s.root);
  f("hostname", s.hostname);
  f("domainname", s.domainname);
  f("mounts", s.mounts);
  f("hooks", s.hooks);
  f("annotations", s.annotations);
  f("linux", s.linux);
  return f.status();
}

Result<json> parse_json(std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::exception &e) {
    // Drop the library's "[json.exception.parse_error.101] " tag; the rest says where and why.
    std::string_view what = e.what();
    if (auto close = what.find("] "); what.starts_with("[json.exception.") && close != what.npos)
      what.remove_prefix(close + 2);
    return failf("malformed JSON: {}", what);
  }
}

// The typed readers check every type before converting, so a throw here would be a bug; it still
// becomes an error value rather than escaping into callers that do not expect exceptions.
template <class T> Result<T> read_document(const json &j, const char *what) {
  if (!j.is_object())
    return failf("{} must be a JSON object", what);
  T out{};
  try {
    BH_CHECK(get(j, "", out));
  } catch (const json::exception &e) {
    return failf("{}: {}", what, e.what());
  }
  return out;
}

} // namespace

Result<Spec> parse_spec(std::string_view text) {
  json j = BH_TRY(parse_json(text));
  return read_document<Spec>(j, "config");
}

Result<Spec> load_bundle_spec(const std::string &bundle) {
  std::string path =
      bundle.empty() || bundle.ends_with('/') ? bundle + "config.json" : bundle + "/config.json";
  auto text = read_file(path);
  if (!text)
    return tl::unexpected(std::move(text.error()));
  return context(parse_spec(*text), path);
}

Result<Process> parse_process(std::string_view text) {
  json j = BH_TRY(parse_json(text));
  return read_document<Process>(j, "process");
}

Result<Resources> parse_resources(std::string_view text) {
  json j = BH_TRY(parse_json(text));
  return read_document<Resources>(j, "resources");
}

nlohmann::json hooks_to_json(const Hooks &hooks) {
  json out = json::object();
  for (const auto &[name, list] : kHookLists) {
    if ((hooks.*list).empty())
      continue;
    json entries = json::array();
    for (const Hook &h : hooks.*list) {
      json entry = {{"path", h.path}};
      if (!h.args.empty())
        entry["args"] = h.args;
      if (!h.env.empty())
        entry["env"] = h.env;
      if (h.timeout)
        entry["timeout"] = *h.timeout;
      entries.push_back(std::move(entry));
    }
    out[name] = std::move(entries);
  }
  return out;
}

Result<Hooks> hooks_from_json(const nlohmann::json &j) {
  if (j.is_null())
    return Hooks{};
  Hooks hooks;
  try {
    BH_CHECK(get(j, "hooks", hooks));
  } catch (const json::exception &e) {
    return failf("hooks: {}", e.what());
  }
  return hooks;
}

} // namespace bulkhead::oci
