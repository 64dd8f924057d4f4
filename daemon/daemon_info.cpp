// Read-only views: container info/list, templates, server info and Prometheus metrics.
#include <unistd.h>

#include <fstream>
#include <set>

#include <fmt/core.h>
#include <fmt/format.h>

#include "daemon/container_disk.hpp"
#include "daemon/daemon.hpp"
#include "daemon/nic_setup.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

json limits_json(const Limits &l, const DiskLimits &d) {
  return {{"memory", l.memory_bytes ? json(*l.memory_bytes) : json(nullptr)},
          {"cpus", l.cpus ? json(*l.cpus) : json(nullptr)},
          {"pids", l.pids ? json(*l.pids) : json(nullptr)},
          {"disk", d.bytes ? json(*d.bytes) : json(nullptr)},
          {"disk_inodes", d.inodes ? json(*d.inodes) : json(nullptr)}};
}

uint64_t self_rss_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string escape_label(const std::string &v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace

// A walk costs O(files in the upper layer) under the entry's lock, and `list` or a metrics
// scraper asks for every container: in those bulk answers 10 s of staleness is the price of not
// walking every hosting container's million files on each call. `info NAME` measures afresh
// (one container, asked for by a person or a script that wants the number now). statfs of an
// ext4 image is cheap and never cached.
constexpr int64_t kDirUsageMaxAgeMs = 10'000;

Result<DiskUsage> Daemon::disk_usage_locked(Entry &e, bool bulk) {
  const auto &c = e.rec.config;
  const ContainerDisk *disk = BH_TRY(container_disk(c.storage));
  if (c.storage != "dir")
    return disk->usage(records_.paths(c.name));
  int64_t now = now_unix_ms();
  if (bulk && e.dir_usage_at_ms && now - e.dir_usage_at_ms < kDirUsageMaxAgeMs)
    return e.dir_usage;
  e.dir_usage = BH_TRY(disk->usage(records_.paths(c.name)));
  e.dir_usage_at_ms = now;
  return e.dir_usage;
}

json Daemon::info_locked(Entry &e, bool bulk) {
  const auto &c = e.rec.config;
  const auto &s = e.rec.status;
  json usage = {{"memory_bytes", 0}, {"cpu_seconds", 0.0}, {"pids", 0}};
  bool live = e.watch_fd && (s.state == "running" || s.state == "frozen" || s.state == "stopping");
  if (live) {
    if (auto st = runtime().stats(c.name); st) {
      usage["memory_bytes"] = st->memory ? st->memory->usage.usage : 0;
      usage["cpu_seconds"] = static_cast<double>(st->cpu.total_ns) / 1e9;
      usage["pids"] = st->pids.current;
    }
  }
  // Both backends report what the container's own files take (ext4: the image's used blocks and
  // inodes; dir: a walk of the upper directory, at most kDirUsageMaxAgeMs old).
  usage["disk"] = 0;
  usage["disk_inodes"] = 0;
  if (auto du = disk_usage_locked(e, bulk); du) {
    usage["disk"] = du->bytes;
    usage["disk_inodes"] = du->inodes;
    if (du->bytes_total) {
      usage["disk_total"] = du->bytes_total;
      usage["disk_inodes_total"] = du->inodes_total;
    }
  } else {
    usage["disk_error"] = du.error().message;
  }
  int64_t now = now_unix_ms();
  json j = {{"name", c.name},
            {"state", s.state},
            {"pid", live ? s.init_pid : 0},
            {"template", c.template_name},
            {"limits", limits_json(c.limits, c.disk)},
            {"storage", c.storage},
            {"usage", usage},
            {"restarts", s.restarts},
            {"uptime_s", live && s.started_unix_ms ? (now - s.started_unix_ms) / 1000 : 0},
            {"restart_policy", restart_policy_text(c.restart)},
            {"onboot", c.onboot},
            {"hostname", c.hostname},
            {"env", c.env},
            {"init", c.init},
            {"created_at", c.created_unix},
            {"crash_loop", s.consecutive_failures >= 3 && (s.state == "starting" || s.state == "error")},
            {"last_exit",
             {{"code", s.last_exit.code}, {"signal", s.last_exit.signal}, {"at", s.last_exit.at_unix}}}};
  j["privileged"] = !c.idmap;
  if (c.idmap) // its ids on the host: 0..size-1 inside are uid.. and gid.. outside
    j["idmap"] = to_json(*c.idmap);
  j["nics"] = nics_json(c.nets);
  j["ports"] = json::array();
  for (const auto &claim : ports_.list(c.name))
    j["ports"].push_back(to_json(claim, ports_.active(c.name)));
  if (e.restart_at_ms)
    j["next_restart_in_ms"] = std::max<int64_t>(0, e.restart_at_ms - now);
  if (!s.error.empty())
    j["error"] = s.error;
  if (!s.fenced_by.empty()) // the cluster placed it on that host: this copy never runs
    j["fenced_by"] = s.fenced_by;
  if (!e.rec.protection.standby.empty())
    j["replication"] = replication_json(c.name, e.rec.protection);
  return j;
}

json Daemon::list() {
  std::vector<EntryPtr> all;
  {
    std::lock_guard lock(table_mu_);
    for (auto &[name, e] : entries_)
      all.push_back(e);
  }
  json out = json::array();
  for (auto &e : all) {
    std::lock_guard lock(e->mu);
    out.push_back(info_locked(*e, /*bulk=*/true));
  }
  return out;
}

Result<json> Daemon::info(const std::string &name) {
  auto e = BH_TRY(get(name));
  std::lock_guard lock(e->mu);
  return info_locked(*e);
}

json Daemon::server_info() const {
  return {{"api_version", "1.0"},
          {"server", "bulkheadd"},
          {"version", BULKHEAD_VERSION},
          {"pid", ::getpid()},
          {"root", options_.root},
          {"lxcfs", lxcfs_ready_},
          {"cgroup_driver", cgroups_.driver()},
          {"cgroup_parent", cgroup_parent_text()},
          {"started_at", started_ms_ / 1000},
          {"host_name", options_.host_name},
          {"fingerprint", identity_ ? identity_->fingerprint() : ""},
          {"listen", options_.listen.empty() ? json(nullptr) : json(options_.listen)}};
}

namespace {

json template_json(const storage::TemplateInfo &t, const std::vector<std::string> &users) {
  return {
      {"name", t.name},   {"source", t.source}, {"created_at", t.created_unix}, {"size_bytes", t.size_bytes},
      {"files", t.files}, {"init", t.init},     {"stop_signal", t.stop_signal}, {"used_by", users}};
}

} // namespace

Result<json> Daemon::templates() {
  auto list = BH_TRY(templates_.list());
  std::map<std::string, std::vector<std::string>> users;
  {
    std::lock_guard lock(table_mu_);
    for (auto &[name, e] : entries_)
      users[e->rec.config.template_name].push_back(name);
  }
  json out = json::array();
  for (const auto &t : list)
    out.push_back(template_json(t, users[t.name]));
  return out;
}

Result<json> Daemon::template_info(const std::string &name) {
  auto t = BH_TRY(templates_.get(name));
  std::vector<std::string> users;
  std::lock_guard lock(table_mu_);
  for (auto &[n, e] : entries_)
    if (e->rec.config.template_name == name)
      users.push_back(n);
  return template_json(t, users);
}

Result<std::shared_ptr<Operation>> Daemon::import_template(const json &req) {
  if (!req.is_object())
    return fail("template: the body must be a JSON object", EINVAL);
  for (const auto &[k, v] : req.items())
    if (k != "name" && k != "source" && k != "debootstrap" && k != "mirror")
      return fail("template: unknown field \"" + k + "\"", EINVAL);
  if (!req.contains("name") || !req["name"].is_string())
    return fail("\"name\" is required and must be a string", EINVAL);
  std::string name = req["name"];
  BH_CHECK(storage::validate_name("template", name));
  if (templates_.get(name))
    return fail("template \"" + name + "\" already exists", EEXIST);
  bool deboot = req.contains("debootstrap");
  if (deboot == req.contains("source"))
    return fail("give either \"source\" or \"debootstrap\"", EINVAL);
  std::string source = req.value(deboot ? "debootstrap" : "source", std::string());
  std::string mirror = req.value("mirror", std::string());
  if (source.empty())
    return fail(std::string("\"") + (deboot ? "debootstrap" : "source") + "\" must be a non-empty string",
                EINVAL);
  return operations_.start(
      "Importing template " + name, "/1.0/templates/" + name,
      [this, name, source, mirror, deboot](Operation &op) -> Status {
        auto progress = [&op](const storage::Progress &p) { op.set_progress(p.stage, p.done, p.total); };
        auto r = deboot ? templates_.debootstrap(name, source, mirror, progress, &op.cancel_flag())
                        : templates_.import(name, source, progress, &op.cancel_flag());
        if (!r)
          return tl::unexpected(r.error());
        return {};
      },
      [this, name](const Operation &op) {
        if (op.to_json()["status"] == "success")
          events_.publish("template-imported", name);
      });
}

Status Daemon::remove_template(const std::string &name) {
  BH_TRY(templates_.get(name));
  {
    std::lock_guard lock(table_mu_);
    std::vector<std::string> users;
    for (auto &[n, e] : entries_)
      if (e->rec.config.template_name == name)
        users.push_back(n);
    if (!users.empty())
      return fail(fmt::format("template \"{}\" is used by {} container(s): {}", name, users.size(),
                              fmt::join(users, ", ")),
                  EBUSY);
    // Holding the table lock while removing keeps a concurrent create from picking the template.
    BH_CHECK(templates_.remove(name));
  }
  events_.publish("template-removed", name);
  return {};
}

std::string Daemon::metrics() {
  json all = list();
  std::map<std::string, int> by_state = {{"stopped", 0},  {"starting", 0}, {"running", 0},
                                         {"stopping", 0}, {"frozen", 0},   {"error", 0}};
  std::string out;
  out += "# HELP bulkhead_daemon_info bulkheadd version.\n# TYPE bulkhead_daemon_info gauge\n";
  out += fmt::format("bulkhead_daemon_info{{version=\"{}\"}} 1\n", BULKHEAD_VERSION);
  out += "# HELP bulkhead_daemon_resident_bytes Resident memory of bulkheadd.\n"
         "# TYPE bulkhead_daemon_resident_bytes gauge\n";
  out += fmt::format("bulkhead_daemon_resident_bytes {}\n", self_rss_bytes());
  out += "# HELP bulkhead_events_published_total Lifecycle events published.\n"
         "# TYPE bulkhead_events_published_total counter\n";
  out += fmt::format("bulkhead_events_published_total {}\n", events_.published());
  out += "# HELP bulkhead_event_subscribers Open /1.0/events streams.\n# TYPE bulkhead_event_subscribers "
         "gauge\n";
  out += fmt::format("bulkhead_event_subscribers {}\n", events_.subscribers());
  std::string mem, cpu, pids, restarts, up, disk;
  for (const auto &c : all) {
    by_state[c["state"].get<std::string>()]++;
    std::string l =
        fmt::format("{{name=\"{}\",template=\"{}\"}}", escape_label(c["name"]), escape_label(c["template"]));
    mem +=
        fmt::format("bulkhead_container_memory_bytes{} {}\n", l, c["usage"]["memory_bytes"].get<uint64_t>());
    cpu += fmt::format("bulkhead_container_cpu_seconds_total{} {}\n", l,
                       c["usage"]["cpu_seconds"].get<double>());
    pids += fmt::format("bulkhead_container_pids{} {}\n", l, c["usage"]["pids"].get<uint64_t>());
    restarts += fmt::format("bulkhead_container_restarts_total{} {}\n", l, c["restarts"].get<int>());
    up += fmt::format("bulkhead_container_up{} {}\n", l, c["state"] == "running" ? 1 : 0);
    disk += fmt::format("bulkhead_container_disk_bytes{} {}\n", l, c["usage"]["disk"].get<uint64_t>());
  }
  out += "# HELP bulkhead_containers Containers by state.\n# TYPE bulkhead_containers gauge\n";
  for (auto &[state, n] : by_state)
    out += fmt::format("bulkhead_containers{{state=\"{}\"}} {}\n", state, n);
  out +=
      "# HELP bulkhead_container_up 1 when the container is running.\n# TYPE bulkhead_container_up gauge\n" +
      up;
  out += "# HELP bulkhead_container_memory_bytes memory.current of the container's cgroup.\n"
         "# TYPE bulkhead_container_memory_bytes gauge\n" +
         mem;
  out += "# HELP bulkhead_container_cpu_seconds_total CPU time of the container's cgroup.\n"
         "# TYPE bulkhead_container_cpu_seconds_total counter\n" +
         cpu;
  out +=
      "# HELP bulkhead_container_pids Processes in the container.\n# TYPE bulkhead_container_pids gauge\n" +
      pids;
  out += "# HELP bulkhead_container_restarts_total Restarts made by the restart policy.\n"
         "# TYPE bulkhead_container_restarts_total counter\n" +
         restarts;
  out += "# HELP bulkhead_container_disk_bytes Bytes of the container's own files (usage.disk).\n"
         "# TYPE bulkhead_container_disk_bytes gauge\n" +
         disk;
  return out;
}

} // namespace bulkhead::daemon
