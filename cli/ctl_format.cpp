#include "cli/ctl_format.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fmt/core.h>

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

// The API sends null for what is unset; value() alone would throw on a null of the wrong type.
template <class T> T field(const json &j, const char *key, T fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null())
    return fallback;
  try {
    return j[key].get<T>();
  } catch (const json::exception &) {
    return fallback;
  }
}

std::string text(const json &j, const char *key, const std::string &fallback = "-") {
  if (!j.is_object() || !j.contains(key) || j[key].is_null())
    return fallback;
  if (j[key].is_string())
    return j[key].get<std::string>().empty() ? fallback : j[key].get<std::string>();
  return j[key].dump();
}

std::string one_decimal(double v) {
  std::string s = fmt::format("{:.1f}", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0)
    s.resize(s.size() - 2);
  return s;
}

std::string join(const json &array, const char *sep) {
  std::string out;
  if (!array.is_array())
    return out;
  for (const auto &item : array) {
    if (!out.empty())
      out += sep;
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string duration(int64_t s) {
  if (s < 60)
    return fmt::format("{}s", s);
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400)
    return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

} // namespace

std::string local_time(int64_t unix_s) {
  if (unix_s <= 0)
    return "-";
  time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string human_size(uint64_t bytes) {
  static const char *kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  // Rounded to one decimal first, so 1023.96KiB becomes 1MiB rather than "1024KiB".
  while (unit + 1 < std::size(kUnits) && std::round(v * 10) / 10 >= 1024) {
    v /= 1024;
    unit++;
  }
  if (unit == 0)
    return fmt::format("{}B", bytes);
  return one_decimal(v) + kUnits[unit];
}

std::string memory_column(const json &c) {
  const json usage = c.value("usage", json::object());
  if (field<std::string>(c, "state", "") == "stopped" || !usage.is_object() ||
      !usage.contains("memory_bytes") || usage["memory_bytes"].is_null())
    return "-";
  std::string used = human_size(field<uint64_t>(usage, "memory_bytes", 0));
  const json limits = c.value("limits", json::object());
  if (!limits.is_object() || !limits.contains("memory") || !limits["memory"].is_number())
    return used + "/-";
  return used + "/" + human_size(limits["memory"].get<uint64_t>());
}

std::string cpu_column(const json &c) {
  const json usage = c.value("usage", json::object());
  if (!usage.is_object() || !usage.contains("cpu_seconds") || !usage["cpu_seconds"].is_number())
    return "-";
  return fmt::format("{:.2f}s", usage["cpu_seconds"].get<double>());
}

std::string render_table(const std::vector<std::string> &header,
                         const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); i++)
    width[i] = header[i].size();
  for (const auto &row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); i++)
      width[i] = std::max(width[i], row[i].size());
  std::string out;
  auto line = [&](const std::vector<std::string> &cells) {
    std::string l;
    for (size_t i = 0; i < cells.size() && i < width.size(); i++) {
      l += cells[i];
      if (i + 1 < cells.size())
        l += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ')
      l.pop_back();
    out += l + "\n";
  };
  line(header);
  for (const auto &row : rows)
    line(row);
  return out;
}

std::string container_table(const json &containers) {
  std::vector<std::vector<std::string>> rows;
  if (containers.is_array())
    for (const auto &c : containers) {
      int64_t pid = field<int64_t>(c, "pid", 0);
      rows.push_back({text(c, "name"), text(c, "state"), pid > 0 ? std::to_string(pid) : "-",
                      text(c, "template"), memory_column(c), cpu_column(c)});
    }
  return render_table({"NAME", "STATE", "PID", "TEMPLATE", "MEMORY", "CPU"}, rows);
}

std::string template_table(const json &templates) {
  std::vector<std::vector<std::string>> rows;
  if (templates.is_array())
    for (const auto &t : templates) {
      const json used = t.value("used_by", json::array());
      rows.push_back({text(t, "name"), human_size(field<uint64_t>(t, "size_bytes", 0)),
                      std::to_string(field<uint64_t>(t, "files", 0)),
                      used.is_array() ? std::to_string(used.size()) : "0",
                      local_time(field<int64_t>(t, "created_at", 0)), text(t, "source")});
    }
  return render_table({"NAME", "SIZE", "FILES", "USED-BY", "CREATED", "SOURCE"}, rows);
}

std::string container_view(const json &c) {
  std::vector<std::pair<std::string, std::string>> kv;
  const json limits = c.value("limits", json::object()), usage = c.value("usage", json::object());
  int64_t pid = field<int64_t>(c, "pid", 0);
  kv.emplace_back("name", text(c, "name"));
  kv.emplace_back("state", text(c, "state") + (field<bool>(c, "crash_loop", false) ? " (crash loop)" : ""));
  kv.emplace_back("pid", pid > 0 ? std::to_string(pid) : "-");
  kv.emplace_back("template", text(c, "template"));
  kv.emplace_back("hostname", text(c, "hostname"));
  if (c.contains("nics") && c["nics"].is_array())
    for (const auto &n : c["nics"]) {
      std::string v = text(n, "network");
      for (const char *k : {"ipv4", "ipv6"})
        if (n.contains(k) && n[k].is_string())
          v += " " + n[k].get<std::string>();
      v += " (host end " + text(n, "host_name") + ")";
      for (const char *k : {"ingress", "egress"})
        if (n.contains(k) && n[k].is_string())
          v += std::string(" ") + k + " " + n[k].get<std::string>();
      kv.emplace_back(text(n, "name"), v);
    }
  kv.emplace_back("memory", memory_column(c));
  std::string cpus = limits.is_object() && limits.contains("cpus") && limits["cpus"].is_number()
                         ? one_decimal(limits["cpus"].get<double>())
                         : "unlimited";
  kv.emplace_back("cpus", cpus + ", used " + cpu_column(c));
  std::string pids = usage.is_object() && usage.contains("pids") && usage["pids"].is_number()
                         ? std::to_string(usage["pids"].get<int64_t>())
                         : "-";
  pids += "/" + (limits.is_object() && limits.contains("pids") && limits["pids"].is_number()
                     ? std::to_string(limits["pids"].get<int64_t>())
                     : std::string("-"));
  kv.emplace_back("pids", pids);
  kv.emplace_back("restart", text(c, "restart_policy") +
                                 fmt::format(" (restarts: {})", field<int64_t>(c, "restarts", 0)));
  kv.emplace_back("onboot", field<bool>(c, "onboot", false) ? "yes" : "no");
  kv.emplace_back("uptime", pid > 0 ? duration(field<int64_t>(c, "uptime_s", 0)) : "-");
  kv.emplace_back("init", c.contains("init") && !join(c["init"], " ").empty() ? join(c["init"], " ") : "-");
  kv.emplace_back("env", c.contains("env") && !join(c["env"], " ").empty() ? join(c["env"], " ") : "-");
  kv.emplace_back("created", local_time(field<int64_t>(c, "created_at", 0)));
  // Unprivileged containers (docs/unprivileged.md): which host ids its ids are.
  if (const json m = c.value("idmap", json()); m.is_object()) {
    auto size = field<uint64_t>(m, "size", 0), uid = field<uint64_t>(m, "uid", 0),
         gid = field<uint64_t>(m, "gid", 0);
    kv.emplace_back("ids", fmt::format("unprivileged: 0-{} inside are uids {}-{}, gids {}-{} on the host",
                                       size - 1, uid, uid + size - 1, gid, gid + size - 1));
  } else if (field<bool>(c, "privileged", false)) {
    kv.emplace_back("ids", "privileged: root inside is root on the host");
  }
  // One line for continuous replication (docs/replication.md): where, how, and how fresh.
  if (const json r = c.value("replication", json()); r.is_object()) {
    std::string v = fmt::format("{} to {} every {} ms: {}", text(r, "mode"), text(r, "standby"),
                                field<int64_t>(r, "interval_ms", 0), text(r, "state"));
    if (r.contains("last_sync_age_ms") && r["last_sync_age_ms"].is_number())
      v += fmt::format(", last set {} ms ago ({}, paused {} ms), {} sets",
                       r["last_sync_age_ms"].get<int64_t>(), human_size(field<uint64_t>(r, "last_bytes", 0)),
                       field<int64_t>(r, "last_pause_ms", 0), field<int64_t>(r, "syncs", 0));
    if (r.contains("error") && r["error"].is_string())
      v += " (" + r["error"].get<std::string>() + ")";
    kv.emplace_back("replication", v);
  }
  const json last = c.value("last_exit", json::object());
  if (last.is_object() && field<int64_t>(last, "at", 0) > 0) {
    int64_t sig = field<int64_t>(last, "signal", 0);
    kv.emplace_back("last exit", (sig ? fmt::format("signal {}", sig)
                                      : fmt::format("code {}", field<int64_t>(last, "code", 0))) +
                                     " at " + local_time(field<int64_t>(last, "at", 0)));
  }
  size_t width = 0;
  for (const auto &[k, v] : kv)
    width = std::max(width, k.size());
  std::string out;
  for (const auto &[k, v] : kv)
    out += k + ":" + std::string(width - k.size() + 1, ' ') + v + "\n";
  return out;
}

std::string evacuation_table(const json &m) {
  bool dry = field<bool>(m, "dry_run", false);
  // Spread over the cluster's hosts: each row says where its container went.
  bool by_cluster = field<bool>(m, "by_cluster", false);
  std::vector<std::vector<std::string>> rows;
  const json list = m.value("containers", json::array());
  if (list.is_array())
    for (const auto &c : list) {
      std::string result = text(c, "result");
      std::vector<std::string> row = {text(c, "name")};
      if (by_cluster)
        row.push_back(text(c, "remote").empty() ? "-" : text(c, "remote"));
      if (dry) {
        for (auto v : {text(c, "state"), text(c, "mode"), result,
                       std::string(field<bool>(c, "template_sent", false) ? "yes" : "no"), text(c, "error")})
          row.push_back(std::move(v));
        rows.push_back(std::move(row));
        continue;
      }
      bool moved = result == "moved";
      for (auto v : {text(c, "state"), text(c, "mode"), result,
                     moved ? fmt::format("{} ms", field<int64_t>(c, "downtime_ms", 0)) : std::string("-"),
                     moved ? human_size(field<uint64_t>(c, "bytes", 0)) : std::string("-"), text(c, "error")})
        row.push_back(std::move(v));
      rows.push_back(std::move(row));
    }
  // A rebalance lists only what it moves: nothing means this host is balanced already.
  const bool rebalance = field<bool>(m, "rebalance", false);
  if (rebalance && rows.empty())
    return fmt::format("nothing to move: {} holds at most one container more than the least loaded host it "
                       "can reach\n",
                       text(m, "host"));
  std::vector<std::string> head = {"NAME"};
  if (by_cluster)
    head.push_back("TO");
  for (const char *h :
       dry ? std::vector<const char *>{"STATE", "MODE", "WOULD", "TEMPLATE-SENT", "WHY NOT"}
           : std::vector<const char *>{"STATE", "MODE", "RESULT", "DOWNTIME", "SENT", "ERROR"})
    head.push_back(h);
  std::string out = render_table(head, rows);
  std::string to =
      by_cluster ? std::string("the cluster's hosts") : text(m, "remote") + " (" + text(m, "address") + ")";
  if (dry)
    return out + fmt::format("dry run, nothing changed: {} would move to {}, {} would be refused\n",
                             field<int64_t>(m, "would_move", 0), to, field<int64_t>(m, "refused", 0));
  return out + fmt::format("{} {} to {}: {} moved, {} failed, {} skipped\n",
                           rebalance ? "rebalanced" : "evacuated", text(m, "host"), to,
                           field<int64_t>(m, "moved", 0), field<int64_t>(m, "failed", 0),
                           field<int64_t>(m, "skipped", 0));
}

std::string host_view(const json &h) {
  std::string out = "host: " + text(h, "host_name") + "\n";
  out += "state: " + text(h, "state") + "\n";
  out += fmt::format("containers: {}\n", field<int64_t>(h, "containers", 0));
  const json cg = h.value("cgroups", json());
  if (cg.is_object())
    out += fmt::format("cgroups: {} ({})\n", text(cg, "driver"), text(cg, "parent"));
  const json e = h.value("evacuation", json());
  if (e.is_object()) {
    out += "evacuating to: " + text(e, "remote") + "\n";
    out += "operation: " + text(e, "operation") + "\n";
    out += fmt::format("parallel: {}\n", field<int64_t>(e, "parallel", 1));
    out += "mode: " + text(e, "mode", "live when running, else cold") + "\n";
    out += fmt::format("progress: {} of {} done ({})\n", field<int64_t>(e, "done", 0),
                       field<int64_t>(e, "total", 0), text(e, "stage"));
    out += "started: " + local_time(field<int64_t>(e, "started_at", 0)) + "\n";
  }
  return out;
}

std::string cluster_table(const json &c) {
  const json hosts = c.value("hosts", json::array());
  if (!hosts.is_array() || hosts.empty())
    return "";
  std::vector<std::vector<std::string>> rows;
  for (const auto &h : hosts) {
    if (!h.is_object())
      continue;
    std::string containers;
    for (const auto &ct : h.value("containers", json::array()))
      if (ct.is_object())
        containers += (containers.empty() ? "" : ",") + text(ct, "name") + "=" + text(ct, "state");
    rows.push_back(
        {text(h, "name"), text(h, "address"), text(h, "state"), containers.empty() ? "-" : containers});
  }
  std::string out = render_table({"HOST", "ADDRESS", "STATE", "CONTAINERS"}, rows);
  if (c.contains("leader"))
    out +=
        "leader: " + (c["leader"].is_string() ? c["leader"].get<std::string>() : std::string("none")) + "\n";
  // The cluster's trust (docs/remotes.md "One trust for the whole cluster").
  if (const json t = c.value("trust", json::object()); t.is_object() && t.contains("key_id")) {
    std::string members;
    for (const auto &m : t.value("members", json::array()))
      if (m.is_string())
        members += (members.empty() ? "" : ", ") + m.get<std::string>();
    out += t["key_id"].is_string() ? "trust: cluster key " + t["key_id"].get<std::string>() +
                                         ", trusted through it: " + (members.empty() ? "-" : members) + "\n"
                                   : std::string("trust: this host holds no cluster key (cluster join)\n");
  }
  // Where each container belongs (docs/cluster.md "Placement"), and what failover made of it.
  const json placements = c.value("placements", json::array());
  if (!placements.is_array() || placements.empty())
    return out;
  rows.clear();
  for (const auto &p : placements) {
    if (!p.is_object())
      continue;
    std::string status = "ok";
    if (p.value("lost", false))
      status = "lost: " + text(p, "lost_reason");
    else if (p.contains("failed_over_from"))
      status = "failed over from " + text(p, "failed_over_from");
    if (p.contains("error"))
      status += fmt::format("; activation failed ({} attempts): {}", field<int64_t>(p, "attempts", 0),
                            text(p, "error"));
    std::string standby = text(p, "standby");
    rows.push_back({text(p, "name"), text(p, "host"), standby.empty() ? "-" : standby,
                    std::to_string(field<int64_t>(p, "epoch", 0)), status});
  }
  return out + "\n" + render_table({"CONTAINER", "HOST", "STANDBY", "EPOCH", "STATUS"}, rows);
}

std::string host_note(const json &h) {
  if (text(h, "state") != "evacuating")
    return "";
  const json e = h.value("evacuation", json::object());
  return fmt::format(
      "host {} is being evacuated to {} (operation {}, {} of {} done): it creates and starts no "
      "container until that ends\n",
      text(h, "host_name"), text(e, "remote"), text(e, "operation"), field<int64_t>(e, "done", 0),
      field<int64_t>(e, "total", 0));
}

std::string event_line(const json &e) {
  int64_t ms = field<int64_t>(e, "time", 0);
  std::string when = local_time(ms / 1000);
  if (ms > 0)
    when += fmt::format(".{:03}", ms % 1000);
  std::string line = when + " " + text(e, "action") + " " + text(e, "name");
  if (e.contains("detail") && e["detail"].is_object())
    for (const auto &[k, v] : e["detail"].items())
      line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return line;
}

std::string progress_line(const std::string &verb, const std::string &name, const json &op, int bar_width) {
  const json p = op.value("progress", json::object());
  std::string stage = text(p, "stage", "working");
  std::string line = verb + " " + name + ": " + stage;
  double percent = field<double>(p, "percent", -1);
  uint64_t done = field<uint64_t>(p, "done", 0), total = field<uint64_t>(p, "total", 0);
  if (percent < 0 && total > 0)
    percent = 100.0 * static_cast<double>(done) / static_cast<double>(total);
  if (percent < 0)
    return line;
  percent = std::clamp(percent, 0.0, 100.0);
  int filled = static_cast<int>(percent * bar_width / 100);
  line += " [" + std::string(filled, '#') + std::string(bar_width - filled, ' ') + "] " +
          fmt::format("{}%", static_cast<int>(percent));
  if (total > 0) {
    // done/total in the unit of the total, so the two numbers read together.
    static const char *kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t unit = 0;
    double scale = 1;
    while (unit + 1 < std::size(kUnits) && static_cast<double>(total) / scale >= 1024) {
      scale *= 1024;
      unit++;
    }
    line += unit == 0 ? fmt::format(" {}/{} B", done, total)
                      : fmt::format(" {:.1f}/{:.1f} {}", static_cast<double>(done) / scale,
                                    static_cast<double>(total) / scale, kUnits[unit]);
  }
  return line;
}

} // namespace bulkhead::ctl
