#include "cgroups/stats.hpp"

#include <dirent.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/inotify.h>
#include <unistd.h>

#include "bulkhead/io.hpp"

namespace bulkhead::cgroups {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

uint64_t to_u64(std::string_view v) {
  while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
    v.remove_suffix(1);
  if (v == "max")
    return kMax;
  uint64_t out = 0;
  for (char c : v) {
    if (c < '0' || c > '9')
      return 0;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return out;
}

// A single-value file; 0 when the file is absent (controller not enabled).
uint64_t read_value(const std::string &path, uint64_t absent = 0) {
  auto v = read_file(path);
  return v ? to_u64(*v) : absent;
}

uint64_t sum_saturating(uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; }

// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per line.
void parse_io_stat(const std::string &text, BlkioStats &out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    uint64_t major = 0, minor = 0;
    if (std::sscanf(line.c_str(), "%lu:%lu", &major, &minor) != 2)
      continue;
    auto values = parse_keyed([&] {
      std::string kv = line.substr(line.find(' ') == std::string::npos ? line.size() : line.find(' '));
      for (auto &c : kv)
        if (c == '=')
          c = ' ';
        else if (c == ' ')
          c = '\n';
      return kv;
    }());
    auto add = [&](std::vector<BlkioEntry> &list, const char *key, const char *op) {
      auto it = values.find(key);
      if (it != values.end())
        list.push_back(BlkioEntry{major, minor, op, it->second});
    };
    add(out.service_bytes, "rbytes", "Read");
    add(out.service_bytes, "wbytes", "Write");
    add(out.serviced, "rios", "Read");
    add(out.serviced, "wios", "Write");
  }
}

} // namespace

std::map<std::string, uint64_t> parse_keyed(const std::string &text) {
  std::map<std::string, uint64_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0)
      continue;
    out[std::string(line.substr(0, space))] = to_u64(line.substr(space + 1));
  }
  return out;
}

Result<std::map<std::string, uint64_t>> read_keyed(const std::string &path) {
  return parse_keyed(BH_TRY(read_file(path)));
}

Result<ContainerStats> read_stats(const Cgroup &cg) {
  const std::string dir = cg.full_path();
  ContainerStats s;
  // cpu.stat exists in every cgroup; the throttling keys only with the cpu controller.
  auto cpu = BH_TRY(read_keyed(dir + "/cpu.stat"));
  s.cpu.total_ns = cpu["usage_usec"] * 1000;
  s.cpu.user_ns = cpu["user_usec"] * 1000;
  s.cpu.kernel_ns = cpu["system_usec"] * 1000;
  s.cpu.periods = cpu["nr_periods"];
  s.cpu.throttled_periods = cpu["nr_throttled"];
  s.cpu.throttled_ns = cpu["throttled_usec"] * 1000;

  if (auto current = read_file(dir + "/memory.current")) {
    MemoryStats m;
    m.usage.usage = to_u64(*current);
    m.usage.limit = read_value(dir + "/memory.max", kMax);
    m.usage.max = read_value(dir + "/memory.peak");
    auto events = read_keyed(dir + "/memory.events");
    if (events)
      m.usage.failcnt = (*events)["max"];
    if (auto raw = read_keyed(dir + "/memory.stat")) {
      m.raw = *raw;
      m.cache = m.raw["file"];
    }
    if (auto swap = read_file(dir + "/memory.swap.current")) {
      m.swap.usage = sum_saturating(to_u64(*swap), m.usage.usage);
      m.swap.limit = sum_saturating(read_value(dir + "/memory.swap.max", kMax), m.usage.limit);
      if (auto swap_events = read_keyed(dir + "/memory.swap.events"))
        m.swap.failcnt = (*swap_events)["fail"];
    }
    s.memory = std::move(m);
  }

  s.pids.current = read_value(dir + "/pids.current");
  uint64_t pids_max = read_value(dir + "/pids.max");
  s.pids.limit = pids_max == kMax ? 0 : pids_max;

  if (auto io = read_file(dir + "/io.stat"))
    parse_io_stat(*io, s.blkio);

  if (DIR *d = ::opendir(dir.c_str())) {
    while (struct dirent *e = ::readdir(d)) {
      std::string name = e->d_name;
      const std::string prefix = "hugetlb.", suffix = ".current";
      if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      std::string size = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
      if (size.find('.') != std::string::npos)
        continue; // hugetlb.2MB.rsvd.current
      HugetlbStats h;
      h.usage = read_value(dir + "/" + name);
      if (auto ev = read_keyed(dir + "/hugetlb." + size + ".events"))
        h.failcnt = (*ev)["max"];
      s.hugetlb[size] = h;
    }
    ::closedir(d);
  }
  return s;
}

Result<OomWatcher> OomWatcher::open(const Cgroup &cg) {
  OomWatcher w;
  w.events_path_ = cg.full_path() + "/memory.events";
  w.inotify_ = UniqueFd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!w.inotify_)
    return failf_errno("inotify_init1");
  if (::inotify_add_watch(w.inotify_.get(), w.events_path_.c_str(), IN_MODIFY) < 0)
    return failf_errno("watching {}", w.events_path_);
  auto events = BH_TRY(read_keyed(w.events_path_));
  w.seen_ = events["oom_kill"];
  return w;
}

Result<uint64_t> OomWatcher::new_kills() {
  char buf[4096];
  while (::read(inotify_.get(), buf, sizeof buf) > 0) {
  }
  auto events = BH_TRY(read_keyed(events_path_));
  uint64_t now = events["oom_kill"];
  uint64_t fresh = now > seen_ ? now - seen_ : 0;
  seen_ = now;
  return fresh;
}

} // namespace bulkhead::cgroups

namespace bulkhead {

namespace {

using json = nlohmann::ordered_json;

// Go's encoding/json `omitempty` on numbers: the member is left out when zero.
void put_nonzero(json &j, const char *key, uint64_t v) {
  if (v != 0)
    j[key] = v;
}

json memory_entry(const MemoryEntryStats &m) {
  json j = json::object();
  j["limit"] = m.limit;
  put_nonzero(j, "usage", m.usage);
  put_nonzero(j, "max", m.max);
  j["failcnt"] = m.failcnt;
  return j;
}

json blkio_list(const std::vector<BlkioEntry> &list) {
  json a = json::array();
  for (const auto &e : list) {
    json j = json::object();
    put_nonzero(j, "major", e.major);
    put_nonzero(j, "minor", e.minor);
    if (!e.op.empty())
      j["op"] = e.op;
    put_nonzero(j, "value", e.value);
    a.push_back(std::move(j));
  }
  return a;
}

json stats_json(const ContainerStats &s) {
  json cpu_usage = json::object();
  put_nonzero(cpu_usage, "total", s.cpu.total_ns);
  cpu_usage["kernel"] = s.cpu.kernel_ns;
  cpu_usage["user"] = s.cpu.user_ns;
  json throttling = json::object();
  put_nonzero(throttling, "periods", s.cpu.periods);
  put_nonzero(throttling, "throttledPeriods", s.cpu.throttled_periods);
  put_nonzero(throttling, "throttledTime", s.cpu.throttled_ns);

  MemoryStats m = s.memory.value_or(MemoryStats{});
  json memory = json::object();
  put_nonzero(memory, "cache", m.cache);
  memory["usage"] = memory_entry(m.usage);
  memory["swap"] = memory_entry(m.swap);
  memory["kernel"] = memory_entry({});
  memory["kernelTCP"] = memory_entry({});
  if (!m.raw.empty())
    memory["raw"] = m.raw;

  json pids = json::object();
  put_nonzero(pids, "current", s.pids.current);
  put_nonzero(pids, "limit", s.pids.limit);

  json blkio = json::object();
  if (!s.blkio.service_bytes.empty())
    blkio["ioServiceBytesRecursive"] = blkio_list(s.blkio.service_bytes);
  if (!s.blkio.serviced.empty())
    blkio["ioServicedRecursive"] = blkio_list(s.blkio.serviced);

  json hugetlb = json::object();
  for (const auto &[size, h] : s.hugetlb) {
    json j = json::object();
    put_nonzero(j, "usage", h.usage);
    put_nonzero(j, "max", h.max);
    j["failcnt"] = h.failcnt;
    hugetlb[size] = std::move(j);
  }
  return json{{"cpu", {{"usage", cpu_usage}, {"throttling", throttling}}},
              {"cpuset", json::object()},
              {"memory", memory},
              {"pids", pids},
              {"blkio", blkio},
              {"hugetlb", hugetlb},
              {"intel_rdt", json::object()},
              {"network_interfaces", nullptr}};
}

} // namespace

std::string event_to_json(const ContainerEvent &event) {
  json j = {{"type", event.type}, {"id", event.id}};
  if (event.stats)
    j["data"] = stats_json(*event.stats);
  return j.dump();
}

} // namespace bulkhead
