#include "cgroups/systemd_scope.hpp"

#include "cgroups/cgroup.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <dlfcn.h>
#include <limits>
#include <map>
#include <systemd/sd-bus.h>
#include <thread>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "cgroups/convert.hpp"

namespace bulkhead::cgroups {

namespace {

constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();

// What systemd accepts in a unit name besides the type suffix (unit_name_is_valid): letters,
// digits and ":-_.\@". ":" cannot occur here (it separates the fields).
bool valid_unit_chars(const std::string &s) {
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '\\' ||
          c == '@'))
      return false;
  return true;
}

} // namespace

Result<std::string> expand_slice(const std::string &slice) {
  const std::string suffix = ".slice";
  if (slice.size() <= suffix.size() || !slice.ends_with(suffix))
    return failf("slice {:?}: a systemd slice name ends in \".slice\"", slice);
  if (slice.find('/') != std::string::npos || slice.find("..") != std::string::npos)
    return failf("slice {:?}: may not contain \"/\" or \"..\"", slice);
  if (!valid_unit_chars(slice))
    return failf("slice {:?}: only letters, digits and \"-_.\\@\" are allowed in a unit name", slice);
  std::string name = slice.substr(0, slice.size() - suffix.size());
  if (name == "-")
    return std::string(); // the root slice: its cgroup is the root
  // Each dash opens one level of nesting: a-b-c.slice lives in a.slice/a-b.slice.
  std::string dir, prefix;
  size_t pos = 0;
  for (;;) {
    size_t dash = name.find('-', pos);
    std::string part = name.substr(pos, dash == std::string::npos ? std::string::npos : dash - pos);
    if (part.empty())
      return failf("slice {:?}: empty part between dashes (systemd refuses such a slice name)", slice);
    dir += "/" + prefix + part + suffix;
    if (dash == std::string::npos)
      break;
    prefix += part + "-";
    pos = dash + 1;
  }
  return dir;
}

Result<SystemdPath> parse_systemd_path(const std::string &cgroups_path, const std::string &id,
                                       SystemdManager manager) {
  const std::string default_slice = manager == SystemdManager::User ? "user.slice" : "system.slice";
  std::string value = cgroups_path.empty() ? default_slice + ":bulkhead:" + id : cgroups_path;
  auto bad = [&](const std::string &why) {
    return failf("linux.cgroupsPath {:?}: {} (the systemd cgroup driver expects \"slice:prefix:name\", "
                 "e.g. \"{}:bulkhead:{}\")",
                 cgroups_path, why, default_slice, id);
  };
  size_t first = value.find(':');
  size_t second = first == std::string::npos ? first : value.find(':', first + 1);
  if (second == std::string::npos || value.find(':', second + 1) != std::string::npos)
    return bad("not three colon-separated fields");
  SystemdPath p;
  p.slice = value.substr(0, first);
  std::string prefix = value.substr(first + 1, second - first - 1);
  std::string name = value.substr(second + 1);
  if (p.slice.empty())
    p.slice = default_slice; // as runc
  auto dir = expand_slice(p.slice);
  if (!dir)
    return bad(dir.error().message);
  p.slice_dir = *dir;
  if (name.empty())
    return bad("the name field is empty");
  if (name.ends_with(".slice"))
    return bad(
        fmt::format("name {:?}: a slice as the container's own unit is not supported, only a scope", name));
  if (!valid_unit_chars(prefix) || !valid_unit_chars(name))
    return bad("only letters, digits and \"-_.\\@\" are allowed in the prefix and the name");
  p.unit = (prefix.empty() ? "" : prefix + "-") + name + ".scope";
  if (p.unit.size() > 255) // UNIT_NAME_MAX
    return bad(fmt::format("the unit name {:?} is longer than systemd's 255 characters", p.unit));
  return p;
}

Result<std::vector<UnitProperty>> systemd_properties(const oci::Resources &r) {
  std::vector<UnitProperty> out;
  auto limit_value = [](int64_t v) { return v < 0 ? kInfinity : static_cast<uint64_t>(v); };
  if (r.memory) {
    int64_t limit = r.memory->limit.value_or(0), swap = r.memory->swap.value_or(0);
    if (limit != 0)
      out.push_back({"MemoryMax", limit_value(limit)});
    if (int64_t low = r.memory->reservation.value_or(0); low != 0)
      out.push_back({"MemoryLow", limit_value(low)});
    if (swap != 0) {
      auto v2 = BH_TRY(memory_swap_to_v2(swap, limit));
      if (v2)
        out.push_back({"MemorySwapMax", limit_value(*v2)});
    }
  }
  if (r.cpu) {
    if (uint64_t weight = cpu_shares_to_weight(r.cpu->shares.value_or(0)))
      out.push_back({"CPUWeight", weight});
    int64_t quota = r.cpu->quota.value_or(0);
    uint64_t period = r.cpu->period.value_or(0);
    if (quota != 0 || period != 0) {
      uint64_t per_sec = kInfinity;
      if (quota > 0) {
        // systemd keeps the quota per second in 10 ms steps; runc rounds up to the next one, so the
        // container never gets less than it asked for.
        per_sec = static_cast<uint64_t>(quota) * 1000000 / (period ? period : 100000);
        if (per_sec % 10000 != 0)
          per_sec = (per_sec / 10000 + 1) * 10000;
      }
      out.push_back({"CPUQuotaPerSecUSec", per_sec});
      if (period != 0)
        out.push_back({"CPUQuotaPeriodUSec", period});
    }
  }
  if (r.pids && r.pids->limit.value_or(0) != 0)
    out.push_back({"TasksMax", limit_value(*r.pids->limit)});
  return out;
}

// ---------------------------------------------------------------------------------------- sd-bus

namespace {

// libsystemd's entry points, resolved once with dlopen (see the header for why not linked).
struct SdBus {
  decltype(&::sd_bus_open_system) open_system;
  decltype(&::sd_bus_open_user) open_user;
  decltype(&::sd_bus_new) bus_new;
  decltype(&::sd_bus_set_address) set_address;
  decltype(&::sd_bus_start) start;
  decltype(&::sd_bus_flush_close_unref) flush_close_unref;
  decltype(&::sd_bus_message_new_method_call) new_method_call;
  decltype(&::sd_bus_message_append) append;
  decltype(&::sd_bus_message_open_container) open_container;
  decltype(&::sd_bus_message_close_container) close_container;
  decltype(&::sd_bus_message_read) read;
  decltype(&::sd_bus_message_unref) message_unref;
  decltype(&::sd_bus_call) call;
  decltype(&::sd_bus_error_free) error_free;
  decltype(&::sd_bus_error_has_name) error_has_name;
  decltype(&::sd_bus_match_signal) match_signal;
  decltype(&::sd_bus_slot_unref) slot_unref;
  decltype(&::sd_bus_process) process;
  decltype(&::sd_bus_wait) wait;
};

Result<const SdBus *> sdbus() {
  static SdBus api{};
  static std::string load_error;
  static bool loaded = false;
  if (loaded)
    return &api;
  if (!load_error.empty())
    return fail(load_error);
  void *h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    load_error =
        fmt::format("--systemd-cgroup: cannot load libsystemd.so.0 (install libsystemd0): {}", ::dlerror());
    return fail(load_error);
  }
  bool ok = true;
  auto sym = [&](auto &fn, const char *name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
    if (!fn) {
      ok = false;
      load_error = fmt::format("--systemd-cgroup: libsystemd.so.0 has no {} (systemd too old?)", name);
    }
  };
  sym(api.open_system, "sd_bus_open_system");
  sym(api.open_user, "sd_bus_open_user");
  sym(api.bus_new, "sd_bus_new");
  sym(api.set_address, "sd_bus_set_address");
  sym(api.start, "sd_bus_start");
  sym(api.flush_close_unref, "sd_bus_flush_close_unref");
  sym(api.new_method_call, "sd_bus_message_new_method_call");
  sym(api.append, "sd_bus_message_append");
  sym(api.open_container, "sd_bus_message_open_container");
  sym(api.close_container, "sd_bus_message_close_container");
  sym(api.read, "sd_bus_message_read");
  sym(api.message_unref, "sd_bus_message_unref");
  sym(api.call, "sd_bus_call");
  sym(api.error_free, "sd_bus_error_free");
  sym(api.error_has_name, "sd_bus_error_has_name");
  sym(api.match_signal, "sd_bus_match_signal");
  sym(api.slot_unref, "sd_bus_slot_unref");
  sym(api.process, "sd_bus_process");
  sym(api.wait, "sd_bus_wait");
  if (!ok)
    return fail(load_error);
  loaded = true;
  return &api;
}

const char *kService = "org.freedesktop.systemd1";
const char *kPath = "/org/freedesktop/systemd1";
const char *kManager = "org.freedesktop.systemd1.Manager";

struct BusCloser {
  const SdBus *api;
  void operator()(sd_bus *b) const { api->flush_close_unref(b); }
};
struct MessageUnref {
  const SdBus *api;
  void operator()(sd_bus_message *m) const { api->message_unref(m); }
};
struct SlotUnref {
  const SdBus *api;
  void operator()(sd_bus_slot *s) const { api->slot_unref(s); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

// sd_bus_error with its cleanup.
struct BusError {
  const SdBus *api;
  sd_bus_error e = SD_BUS_ERROR_NULL;
  explicit BusError(const SdBus *a) : api(a) {}
  BusError(const BusError &) = delete;
  BusError &operator=(const BusError &) = delete;
  ~BusError() { api->error_free(&e); }
  bool is(const char *name) const { return api->error_has_name(&e, name) > 0; }
  std::string text(int r) const {
    if (e.message)
      return fmt::format("{} ({})", e.message, e.name ? e.name : "");
    return std::strerror(-r);
  }
};

} // namespace

struct SystemdBus::Impl {
  const SdBus *api = nullptr;
  std::unique_ptr<sd_bus, BusCloser> bus{nullptr, BusCloser{nullptr}};
  std::unique_ptr<sd_bus_slot, SlotUnref> job_removed{nullptr, SlotUnref{nullptr}};
  std::map<std::string, std::string> finished_jobs; // job object path -> result
  SystemdManager manager = SystemdManager::System;

  static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *) {
    auto *self = static_cast<Impl *>(userdata);
    uint32_t id = 0;
    const char *job = nullptr, *unit = nullptr, *result = nullptr;
    if (self->api->read(m, "uoss", &id, &job, &unit, &result) >= 0 && job && result)
      self->finished_jobs[job] = result;
    return 0;
  }

  Result<MessagePtr> method(const char *member) {
    sd_bus_message *m = nullptr;
    int r = api->new_method_call(bus.get(), &m, kService, kPath, kManager, member);
    if (r < 0)
      return fail(fmt::format("systemd {}: building the D-Bus call", member), -r);
    return MessagePtr(m, MessageUnref{api});
  }

  // Sends `m`; on a D-Bus error, the error's name goes to `error_name` (when given) so the
  // caller can accept the ones it expects, such as NoSuchUnit.
  Result<MessagePtr> call(MessagePtr m, const std::string &what, std::string *error_name = nullptr) {
    BusError err(api);
    sd_bus_message *reply = nullptr;
    // TCG VMs and loaded hosts answer slowly: a minute before giving up.
    int r = api->call(bus.get(), m.get(), 60ULL * 1000000, &err.e, &reply);
    if (r < 0) {
      if (error_name && err.e.name)
        *error_name = err.e.name;
      return fail(fmt::format("systemd {}: {}", what, err.text(r)));
    }
    return MessagePtr(reply, MessageUnref{api});
  }

  Status append_properties(sd_bus_message *m, const std::vector<UnitProperty> &props,
                           const std::string &what) {
    for (const auto &p : props)
      if (int r = api->append(m, "(sv)", p.name.c_str(), "t", p.value); r < 0)
        return fail(fmt::format("systemd {}: adding property {}={}", what, p.name, p.value), -r);
    return {};
  }
};

SystemdBus::SystemdBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SystemdBus::SystemdBus(SystemdBus &&) noexcept = default;
SystemdBus &SystemdBus::operator=(SystemdBus &&) noexcept = default;
SystemdBus::~SystemdBus() = default;

namespace {

// A private socket of a systemd manager (no D-Bus daemon in between); nullptr and `tried` extended
// when it does not answer.
sd_bus *open_private(const SdBus *api, const std::string &path, std::string &tried) {
  sd_bus *b = nullptr;
  int r = api->bus_new(&b);
  if (r >= 0)
    r = api->set_address(b, ("unix:path=" + path).c_str());
  if (r >= 0)
    r = api->start(b);
  if (r >= 0)
    return b;
  if (b)
    api->flush_close_unref(b);
  tried += fmt::format("; {}: {}", path, std::strerror(-r));
  return nullptr;
}

} // namespace

Result<SystemdBus> SystemdBus::connect(SystemdManager manager) {
  // sd_booted()'s test: the directory systemd as PID 1 creates early.
  if (::access("/run/systemd/system", F_OK) < 0)
    return fail_errno("--systemd-cgroup: systemd is not running on this host (/run/systemd/system)");
  const SdBus *api = BH_TRY(sdbus());
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  impl->manager = manager;
  sd_bus *b = nullptr;
  std::string tried;
  if (manager == SystemdManager::User) {
    int r = api->open_user(&b);
    if (r < 0) {
      b = nullptr;
      tried = fmt::format("your user bus: {}", std::strerror(-r));
      const char *runtime_dir = std::getenv("XDG_RUNTIME_DIR");
      if (runtime_dir && *runtime_dir)
        b = open_private(api, std::string(runtime_dir) + "/systemd/private", tried);
      else
        tried += "; XDG_RUNTIME_DIR is not set";
    }
    if (!b)
      return failf("--systemd-cgroup (rootless): cannot reach your systemd user manager ({}); is "
                   "user@{}.service running (loginctl enable-linger)?",
                   tried, ::getuid());
  } else {
    int r = api->open_system(&b);
    if (r < 0) {
      b = nullptr;
      tried = fmt::format("system bus: {}", std::strerror(-r));
      // As systemctl: root may talk to PID 1 directly on its private socket when no D-Bus daemon
      // runs (a minimal boot, early boot, the VM test bed).
      if (::geteuid() == 0)
        b = open_private(api, "/run/systemd/private", tried);
    }
  }
  if (!b)
    return failf("--systemd-cgroup: cannot reach systemd over D-Bus ({})", tried);
  impl->bus = std::unique_ptr<sd_bus, BusCloser>(b, BusCloser{api});
  sd_bus_slot *slot = nullptr;
  int r =
      api->match_signal(b, &slot, kService, kPath, kManager, "JobRemoved", &Impl::on_job_removed, impl.get());
  if (r < 0)
    return fail("--systemd-cgroup: subscribing to systemd's JobRemoved signal", -r);
  impl->job_removed = std::unique_ptr<sd_bus_slot, SlotUnref>(slot, SlotUnref{api});
  // On the system bus systemd emits job signals only while some client is subscribed.
  auto sub = BH_TRY(impl->method("Subscribe"));
  BH_TRY(impl->call(std::move(sub), "Subscribe"));
  return SystemdBus(std::move(impl));
}

Result<std::string> SystemdBus::wait_job(const std::string &job, const std::string &unit) {
  const SdBus *api = impl_->api;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    if (auto it = impl_->finished_jobs.find(job); it != impl_->finished_jobs.end()) {
      std::string result = it->second;
      impl_->finished_jobs.erase(it);
      return result;
    }
    int r = api->process(impl_->bus.get(), nullptr);
    if (r < 0)
      return fail(fmt::format("systemd: waiting for job {} of unit {}", job, unit), -r);
    if (r > 0)
      continue; // more may be queued
    auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return failf("systemd: job {} of unit {} did not finish within 60 s", job, unit);
    r = api->wait(impl_->bus.get(), static_cast<uint64_t>(left.count()));
    if (r < 0 && r != -EINTR)
      return fail(fmt::format("systemd: waiting for job {} of unit {}", job, unit), -r);
  }
}

Result<std::string> SystemdBus::start_scope(const SystemdPath &path, pid_t pid,
                                            const std::vector<UnitProperty> &props,
                                            const std::string &description) {
  const SdBus *api = impl_->api;
  const std::string what = "StartTransientUnit " + path.unit;
  auto m = BH_TRY(impl_->method("StartTransientUnit"));
  int r = api->append(m.get(), "ss", path.unit.c_str(), "fail");
  if (r >= 0)
    r = api->open_container(m.get(), 'a', "(sv)");
  if (r >= 0)
    r = api->append(m.get(), "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s", description.c_str(),
                    "Slice", "s", path.slice.c_str(), "Delegate", "b", 1, "PIDs", "au", 1,
                    static_cast<uint32_t>(pid),
                    // As runc: no ordering against shutdown.target and friends; the engine stops it.
                    "DefaultDependencies", "b", 0, "MemoryAccounting", "b", 1, "CPUAccounting", "b", 1,
                    "TasksAccounting", "b", 1);
  if (r < 0)
    return fail(fmt::format("systemd {}: building the D-Bus call", what), -r);
  BH_CHECK(impl_->append_properties(m.get(), props, what));
  r = api->close_container(m.get());
  if (r >= 0)
    r = api->append(m.get(), "a(sa(sv))", 0);
  if (r < 0)
    return fail(fmt::format("systemd {}: building the D-Bus call", what), -r);
  auto reply = BH_TRY(impl_->call(std::move(m), what));
  const char *job = nullptr;
  if ((r = api->read(reply.get(), "o", &job)) < 0 || !job)
    return fail(fmt::format("systemd {}: reading the job path", what), r < 0 ? -r : EPROTO);
  std::string result = BH_TRY(wait_job(job, path.unit));
  if (result != "done") {
    (void)stop_unit(path.unit);
    return failf("systemd {}: the start job finished with result {:?} (journalctl -u {} may say why)", what,
                 result, path.unit);
  }
  std::string where = fmt::format("/proc/{}/cgroup", pid);
  auto text = read_file(where);
  if (!text) {
    (void)stop_unit(path.unit);
    return tl::unexpected(text.error());
  }
  auto cgroup = unified_cgroup_from(*text, where);
  std::string expected = path.slice_dir + "/" + path.unit;
  // A user's manager keeps its units below its own cgroup (user@UID.service).
  bool in_scope =
      cgroup && (impl_->manager == SystemdManager::User ? cgroup->ends_with(expected) : *cgroup == expected);
  if (cgroup && !in_scope) {
    (void)stop_unit(path.unit);
    return failf("systemd {}: pid {} is in cgroup {}, not in the scope's {}", what, pid, *cgroup, expected);
  }
  return cgroup;
}

Status SystemdBus::set_properties(const std::string &unit, const std::vector<UnitProperty> &props) {
  if (props.empty())
    return {};
  const SdBus *api = impl_->api;
  const std::string what = "SetUnitProperties " + unit;
  auto m = BH_TRY(impl_->method("SetUnitProperties"));
  int r = api->append(m.get(), "sb", unit.c_str(), 1);
  if (r >= 0)
    r = api->open_container(m.get(), 'a', "(sv)");
  if (r < 0)
    return fail(fmt::format("systemd {}: building the D-Bus call", what), -r);
  BH_CHECK(impl_->append_properties(m.get(), props, what));
  if ((r = api->close_container(m.get())) < 0)
    return fail(fmt::format("systemd {}: building the D-Bus call", what), -r);
  BH_TRY(impl_->call(std::move(m), what));
  return {};
}

Result<bool> SystemdBus::unit_loaded(const std::string &unit) {
  auto m = BH_TRY(impl_->method("GetUnit"));
  if (int r = impl_->api->append(m.get(), "s", unit.c_str()); r < 0)
    return fail("systemd GetUnit: building the D-Bus call", -r);
  std::string error_name;
  auto reply = impl_->call(std::move(m), "GetUnit " + unit, &error_name);
  if (!reply && error_name == "org.freedesktop.systemd1.NoSuchUnit")
    return false;
  if (!reply)
    return tl::unexpected(reply.error());
  return true;
}

Status SystemdBus::stop_unit(const std::string &unit) {
  const SdBus *api = impl_->api;
  // SIGKILL first: a scope is stopped with SIGTERM and a 90 s timeout, and a container's init (pid
  // 1 of its namespace, no handler) ignores SIGTERM from outside. Errors are for a scope that has
  // no processes left or no longer exists, which the stop below handles.
  auto kill = BH_TRY(impl_->method("KillUnit"));
  if (int r = api->append(kill.get(), "ssi", unit.c_str(), "all", SIGKILL); r < 0)
    return fail("systemd KillUnit: building the D-Bus call", -r);
  (void)impl_->call(std::move(kill), "KillUnit " + unit);
  auto m = BH_TRY(impl_->method("StopUnit"));
  if (int r = api->append(m.get(), "ss", unit.c_str(), "replace"); r < 0)
    return fail("systemd StopUnit: building the D-Bus call", -r);
  std::string error_name;
  auto reply = impl_->call(std::move(m), "StopUnit " + unit, &error_name);
  if (reply) {
    const char *job = nullptr;
    if (api->read(reply->get(), "o", &job) >= 0 && job)
      BH_TRY(wait_job(job, unit)); // "done", or "canceled" if the scope emptied meanwhile: both stop it
  } else if (error_name != "org.freedesktop.systemd1.NoSuchUnit") {
    return tl::unexpected(reply.error());
  }
  // A scope whose processes were killed may be left "failed", which keeps it loaded.
  auto reset = BH_TRY(impl_->method("ResetFailedUnit"));
  if (int r = api->append(reset.get(), "s", unit.c_str()); r < 0)
    return fail("systemd ResetFailedUnit: building the D-Bus call", -r);
  (void)impl_->call(std::move(reset), "ResetFailedUnit " + unit);
  // systemd unloads a stopped transient unit from its GC queue, a moment after the job.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (BH_TRY(unit_loaded(unit))) {
    if (std::chrono::steady_clock::now() > deadline)
      return failf("systemd: unit {} is still loaded 10 s after it was stopped", unit);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

} // namespace bulkhead::cgroups
