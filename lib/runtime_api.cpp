// The runtime face of the C ABI: each call validates every argument first (so bad input leaves
// nothing behind), then runs one `bulkhead` command in a spawned helper (helper_spawn.cpp).
#include <csignal>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/abi_common.hpp"
#include "lib/helper_spawn.hpp"

struct bulkhead_runtime {
  std::string binary;
  std::string root;
  bool systemd_cgroup = false;
};

namespace bulkhead::abi {
namespace {

// The sizes of the first (ABI 1) versions: a struct may only grow past these.
constexpr size_t kRuntimeV1 = sizeof(bulkhead_runtime_options);
constexpr size_t kCreateV1 = sizeof(bulkhead_create_options);
constexpr size_t kRunV1 = sizeof(bulkhead_run_options);
constexpr size_t kExecV1 = sizeof(bulkhead_exec_options);
constexpr size_t kResourcesV1 = sizeof(bulkhead_resources);
constexpr size_t kEventsV1 = sizeof(bulkhead_events_options);

bulkhead_status check_rt_id(const bulkhead_runtime *rt, const char *id) {
  if (rt == nullptr)
    return set_error(BULKHEAD_E_INVALID, "runtime handle is NULL");
  if (id == nullptr || *id == '\0')
    return set_error(BULKHEAD_E_INVALID, "container id is NULL or empty");
  return BULKHEAD_OK;
}

std::vector<std::string> base_argv(const bulkhead_runtime *rt) {
  // The helper's errors come back as JSON lines on fd 3 (helper_spawn.cpp), apart from the output.
  std::vector<std::string> argv = {rt->binary, "--log", "/dev/fd/3", "--log-format", "json"};
  // No root given: the helper's own default (/run/bulkhead, or $XDG_RUNTIME_DIR/bulkhead for a
  // rootless caller), decided where the runtime runs.
  if (!rt->root.empty())
    argv.insert(argv.begin() + 1, {"--root", rt->root});
  if (rt->systemd_cgroup)
    argv.push_back("--systemd-cgroup");
  return argv;
}

// The message of the helper's last error log line (`--log-format json`), "" when it logged none.
std::string logged_error(const std::string &log) {
  std::string msg;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    std::string line = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? log.size() : nl + 1;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("level", "") == "error")
      msg = j.value("msg", "");
  }
  return msg;
}

// Runs the command. A logged error (or, unless allow_status, a nonzero exit) is BULKHEAD_E_FAILED
// with the runtime's message. allow_status: run/exec, whose exit status is the process's answer.
bulkhead_status run(const std::vector<std::string> &argv, std::string_view input, Stdio stdio,
                    HelperResult *out, bool allow_status = false,
                    const std::function<bool(std::string_view)> &on_line = {}) {
  auto r = run_helper(argv, input, stdio, on_line);
  if (!r)
    return set_error(BULKHEAD_E_SPAWN, r.error().text());
  std::string msg = logged_error(r->log);
  if (msg.empty() && r->exit_status != 0 && !allow_status) {
    msg = fmt::format("{} exited with status {}", argv[0], r->exit_status);
    if (!r->err.empty())
      msg += ": " + r->err;
  }
  if (!msg.empty())
    return set_error(BULKHEAD_E_FAILED, msg);
  if (out != nullptr)
    *out = std::move(*r);
  return ok();
}

void add_create_flags(std::vector<std::string> &argv, const bulkhead_create_options &o) {
  argv.insert(argv.end(), {"--bundle", o.bundle != nullptr ? o.bundle : "."});
  if (o.pid_file != nullptr)
    argv.insert(argv.end(), {"--pid-file", o.pid_file});
  if (o.console_socket != nullptr)
    argv.insert(argv.end(), {"--console-socket", o.console_socket});
  if (o.no_pivot)
    argv.push_back("--no-pivot");
  if (o.no_new_keyring)
    argv.push_back("--no-new-keyring");
}

bulkhead_status state_pid(bulkhead_runtime *rt, const char *id, int *pid) {
  HelperResult r;
  auto argv = base_argv(rt);
  argv.insert(argv.end(), {"state", id});
  if (auto s = run(argv, "", Stdio::Capture, &r); s != BULKHEAD_OK)
    return s;
  *pid = nlohmann::json::parse(r.out).value("pid", 0);
  return BULKHEAD_OK;
}

bulkhead_status simple(bulkhead_runtime *rt, const char *id, std::initializer_list<std::string> cmd) {
  if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
    return s;
  auto argv = base_argv(rt);
  argv.insert(argv.end(), cmd);
  argv.push_back(id);
  return run(argv, "", Stdio::Capture, nullptr);
}

bulkhead_status json_answer(bulkhead_runtime *rt, std::vector<std::string> cmd, char **json_out) {
  auto argv = base_argv(rt);
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  HelperResult r;
  if (auto s = run(argv, "", Stdio::Capture, &r); s != BULKHEAD_OK)
    return s;
  while (!r.out.empty() && r.out.back() == '\n')
    r.out.pop_back();
  return give_string(r.out, json_out);
}

// Appends exec's flags; the args must be non-empty.
bulkhead_status add_exec_flags(std::vector<std::string> &argv, const bulkhead_exec_options &o, bool ctl) {
  if (o.args == nullptr || o.args[0] == nullptr)
    return set_error(BULKHEAD_E_INVALID, "exec options: args is NULL or empty");
  for (const char *const *e = o.env; e != nullptr && *e != nullptr; ++e)
    argv.insert(argv.end(), {"--env", *e});
  if (o.cwd != nullptr)
    argv.insert(argv.end(), {"--cwd", o.cwd});
  if (o.user != nullptr)
    argv.insert(argv.end(), {"--user", o.user});
  if (o.detach && !ctl)
    argv.push_back("--detach");
  else if (o.detach)
    return set_error(BULKHEAD_E_INVALID, "exec options: detach is not supported through bulkheadd");
  return BULKHEAD_OK;
}

} // namespace

bulkhead_status exec_args(std::vector<std::string> &argv, const bulkhead_exec_options *options, bool ctl,
                          const char *id) {
  bulkhead_exec_options o;
  if (options == nullptr)
    return set_error(BULKHEAD_E_INVALID, "exec options are NULL (args are required)");
  if (auto s = load_options(options, kExecV1, "bulkhead_exec_options", &o); s != BULKHEAD_OK)
    return s;
  if (auto s = add_exec_flags(argv, o, ctl); s != BULKHEAD_OK)
    return s;
  argv.push_back(id);
  if (ctl)
    argv.push_back("--");
  for (const char *const *a = o.args; *a != nullptr; ++a)
    argv.push_back(*a);
  return BULKHEAD_OK;
}

} // namespace bulkhead::abi

using namespace bulkhead::abi;

BH_API bulkhead_status bulkhead_runtime_new(const bulkhead_runtime_options *options, bulkhead_runtime **out) {
  return guarded([&] {
    if (out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "out (bulkhead_runtime **) is NULL");
    *out = nullptr;
    bulkhead_runtime_options o;
    if (auto s = load_options(options, kRuntimeV1, "bulkhead_runtime_options", &o); s != BULKHEAD_OK)
      return s;
    auto rt = std::make_unique<bulkhead_runtime>();
    rt->binary = helper_path(o.binary, "BULKHEAD_BINARY", BULKHEAD_INSTALLED_BINARY);
    if (rt->binary.empty() || rt->binary[0] != '/')
      return set_error(BULKHEAD_E_INVALID, "helper binary \"" + rt->binary + "\" is not an absolute path");
    if (o.root != nullptr && *o.root == '\0')
      return set_error(BULKHEAD_E_INVALID, "runtime options: root is empty");
    rt->root = o.root != nullptr ? o.root : "";
    rt->systemd_cgroup = o.systemd_cgroup != 0;
    *out = rt.release();
    return ok();
  });
}

BH_API void bulkhead_runtime_free(bulkhead_runtime *rt) { delete rt; }

BH_API bulkhead_status bulkhead_create(bulkhead_runtime *rt, const char *id,
                                       const bulkhead_create_options *options, int *pid_out) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    bulkhead_create_options o;
    if (auto s = load_options(options, kCreateV1, "bulkhead_create_options", &o); s != BULKHEAD_OK)
      return s;
    auto argv = base_argv(rt);
    argv.push_back("create");
    add_create_flags(argv, o);
    argv.push_back(id);
    if (auto s = run(argv, "", Stdio::Null, nullptr); s != BULKHEAD_OK)
      return s;
    if (pid_out != nullptr)
      return state_pid(rt, id, pid_out);
    return BULKHEAD_OK;
  });
}

BH_API bulkhead_status bulkhead_start(bulkhead_runtime *rt, const char *id) {
  return guarded([&] { return simple(rt, id, {"start"}); });
}

BH_API bulkhead_status bulkhead_state(bulkhead_runtime *rt, const char *id, char **json_out) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    if (json_out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "json_out is NULL");
    return json_answer(rt, {"state", id}, json_out);
  });
}

BH_API bulkhead_status bulkhead_kill(bulkhead_runtime *rt, const char *id, int signal, int all) {
  return guarded([&] {
    if (signal < 0 || signal >= NSIG)
      return set_error(BULKHEAD_E_INVALID, "signal " + std::to_string(signal) + " is out of range");
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    auto argv = base_argv(rt);
    argv.push_back("kill");
    if (all)
      argv.push_back("--all");
    argv.insert(argv.end(), {id, std::to_string(signal)});
    return run(argv, "", Stdio::Capture, nullptr);
  });
}

BH_API bulkhead_status bulkhead_delete(bulkhead_runtime *rt, const char *id, int force) {
  return guarded([&] { return force ? simple(rt, id, {"delete", "--force"}) : simple(rt, id, {"delete"}); });
}

BH_API bulkhead_status bulkhead_run(bulkhead_runtime *rt, const char *id,
                                    const bulkhead_create_options *create,
                                    const bulkhead_run_options *run_options, int *exit_status) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    bulkhead_create_options c;
    bulkhead_run_options r;
    if (auto s = load_options(create, kCreateV1, "bulkhead_create_options", &c); s != BULKHEAD_OK)
      return s;
    if (auto s = load_options(run_options, kRunV1, "bulkhead_run_options", &r); s != BULKHEAD_OK)
      return s;
    auto argv = base_argv(rt);
    argv.push_back("run");
    add_create_flags(argv, c);
    if (r.detach)
      argv.push_back("--detach");
    if (r.keep)
      argv.push_back("--keep");
    argv.push_back(id);
    HelperResult h;
    if (auto s = run(argv, "", r.detach ? Stdio::Null : Stdio::Inherit, &h, /*allow_status=*/!r.detach);
        s != BULKHEAD_OK)
      return s;
    if (exit_status != nullptr)
      *exit_status = h.exit_status;
    return BULKHEAD_OK;
  });
}

BH_API bulkhead_status bulkhead_exec(bulkhead_runtime *rt, const char *id,
                                     const bulkhead_exec_options *options, int *exit_status) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    auto argv = base_argv(rt);
    argv.push_back("exec");
    if (auto s = exec_args(argv, options, false, id); s != BULKHEAD_OK)
      return s;
    HelperResult h;
    bool detach = options->detach != 0;
    if (auto s = run(argv, "", detach ? Stdio::Null : Stdio::Inherit, &h, /*allow_status=*/!detach);
        s != BULKHEAD_OK)
      return s;
    if (exit_status != nullptr)
      *exit_status = h.exit_status;
    return BULKHEAD_OK;
  });
}

BH_API bulkhead_status bulkhead_pause(bulkhead_runtime *rt, const char *id) {
  return guarded([&] { return simple(rt, id, {"pause"}); });
}

BH_API bulkhead_status bulkhead_resume(bulkhead_runtime *rt, const char *id) {
  return guarded([&] { return simple(rt, id, {"resume"}); });
}

BH_API bulkhead_status bulkhead_update(bulkhead_runtime *rt, const char *id,
                                       const bulkhead_resources *resources) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    if (resources == nullptr)
      return set_error(BULKHEAD_E_INVALID, "resources are NULL");
    bulkhead_resources r;
    if (auto s = load_options(resources, kResourcesV1, "bulkhead_resources", &r); s != BULKHEAD_OK)
      return s;
    // A LinuxResources document on the helper's stdin (`update -r -`).
    nlohmann::json doc = nlohmann::json::object();
    if (r.memory_limit != 0)
      doc["memory"]["limit"] = r.memory_limit;
    if (r.memory_swap != 0)
      doc["memory"]["swap"] = r.memory_swap;
    if (r.pids_limit != 0)
      doc["pids"]["limit"] = r.pids_limit;
    if (r.cpu_quota_us != 0)
      doc["cpu"]["quota"] = r.cpu_quota_us;
    if (r.cpu_period_us != 0)
      doc["cpu"]["period"] = r.cpu_period_us;
    if (r.cpu_shares != 0)
      doc["cpu"]["shares"] = r.cpu_shares;
    if (doc.empty())
      return set_error(BULKHEAD_E_INVALID, "resources: every field is 0 (nothing to change)");
    auto argv = base_argv(rt);
    argv.insert(argv.end(), {"update", "--resources", "-", id});
    return run(argv, doc.dump(), Stdio::Capture, nullptr);
  });
}

BH_API bulkhead_status bulkhead_stats(bulkhead_runtime *rt, const char *id, char **json_out) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    if (json_out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "json_out is NULL");
    return json_answer(rt, {"events", "--stats", id}, json_out);
  });
}

BH_API bulkhead_status bulkhead_events(bulkhead_runtime *rt, const char *id,
                                       const bulkhead_events_options *options, bulkhead_event_fn fn,
                                       void *user) {
  return guarded([&] {
    if (auto s = check_rt_id(rt, id); s != BULKHEAD_OK)
      return s;
    if (fn == nullptr)
      return set_error(BULKHEAD_E_INVALID, "event callback is NULL");
    bulkhead_events_options o;
    if (auto s = load_options(options, kEventsV1, "bulkhead_events_options", &o); s != BULKHEAD_OK)
      return s;
    auto argv = base_argv(rt);
    argv.insert(argv.end(),
                {"events", "--interval", std::to_string(o.interval_ms ? o.interval_ms : 5000) + "ms", id});
    return run(argv, "", Stdio::Capture, nullptr, false, [&](std::string_view line) {
      if (line.empty())
        return true;
      return fn(std::string(line).c_str(), user) != 0;
    });
  });
}

BH_API bulkhead_status bulkhead_list(bulkhead_runtime *rt, char **json_out) {
  return guarded([&] {
    if (rt == nullptr)
      return set_error(BULKHEAD_E_INVALID, "runtime handle is NULL");
    if (json_out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "json_out is NULL");
    return json_answer(rt, {"list", "--format", "json"}, json_out);
  });
}
