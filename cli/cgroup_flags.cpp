#include "cli/cgroup_flags.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fmt/format.h>

namespace bulkhead::cli {

namespace {

Result<int64_t> parse_int(const std::string &flag, const std::string &text) {
  try {
    size_t used = 0;
    long long v = std::stoll(text, &used, 10);
    if (used == text.size())
      return static_cast<int64_t>(v);
  } catch (const std::exception &) {
  }
  return failf("--{}: {:?} is not an integer", flag, text);
}

Result<uint64_t> parse_uint(const std::string &flag, const std::string &text) {
  int64_t v = BH_TRY(parse_int(flag, text));
  if (v < 0)
    return failf("--{}: {} must not be negative", flag, v);
  return static_cast<uint64_t>(v);
}

} // namespace

Result<oci::Resources> resources_from_flags(oci::Resources r,
                                            const std::map<std::string, std::string> &flags) {
  auto memory = [&]() -> oci::MemoryResources & {
    if (!r.memory)
      r.memory.emplace();
    return *r.memory;
  };
  auto cpu = [&]() -> oci::CpuResources & {
    if (!r.cpu)
      r.cpu.emplace();
    return *r.cpu;
  };
  for (const auto &[name, value] : flags) {
    auto wrap = [&, name = name](Result<int64_t> v) -> Result<int64_t> {
      if (!v)
        return fail(fmt::format("--{}: {}", name, v.error().message));
      return v;
    };
    if (name == "memory")
      memory().limit = BH_TRY(wrap(parse_memory_size(value)));
    else if (name == "memory-reservation")
      memory().reservation = BH_TRY(wrap(parse_memory_size(value)));
    else if (name == "memory-swap")
      memory().swap = BH_TRY(wrap(parse_memory_size(value)));
    else if (name == "cpu-quota")
      cpu().quota = BH_TRY(parse_int(name, value));
    else if (name == "cpu-period")
      cpu().period = BH_TRY(parse_uint(name, value));
    else if (name == "cpu-burst")
      cpu().burst = BH_TRY(parse_uint(name, value));
    else if (name == "cpu-share" || name == "cpu-shares")
      cpu().shares = BH_TRY(parse_uint(name, value));
    else if (name == "cpu-rt-period")
      cpu().realtime_period = BH_TRY(parse_uint(name, value));
    else if (name == "cpu-rt-runtime")
      cpu().realtime_runtime = BH_TRY(parse_int(name, value));
    else if (name == "cpu-idle")
      cpu().idle = BH_TRY(parse_int(name, value));
    else if (name == "cpuset-cpus")
      cpu().cpus = value;
    else if (name == "cpuset-mems")
      cpu().mems = value;
    else if (name == "pids-limit") {
      if (!r.pids)
        r.pids.emplace();
      r.pids->limit = BH_TRY(parse_int(name, value));
    } else if (name == "blkio-weight") {
      uint64_t w = BH_TRY(parse_uint(name, value));
      if (w > 1000)
        return failf("--blkio-weight: {} is outside 10-1000", w);
      if (!r.block_io)
        r.block_io.emplace();
      r.block_io->weight = static_cast<uint16_t>(w);
    } else {
      return failf("--{}: unknown update flag", name);
    }
  }
  return r;
}

Result<int64_t> parse_memory_size(const std::string &text) {
  if (text == "-1")
    return -1;
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0)
    return failf("{:?} is not a size (like 512m, 1g or a byte count)", text);
  double number = 0;
  try {
    number = std::stod(text.substr(0, i));
  } catch (const std::exception &) {
    return failf("{:?} is not a size (like 512m, 1g or a byte count)", text);
  }
  std::string unit;
  for (char c : text.substr(i))
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && (unit.ends_with("ib") || unit.ends_with("b")))
    unit.resize(unit.ends_with("ib") ? unit.size() - 2 : unit.size() - 1);
  static const std::string units = "kmgtp";
  double mult = 1;
  if (unit == "b" || unit.empty()) {
  } else if (unit.size() == 1 && units.find(unit[0]) != std::string::npos) {
    mult = std::pow(1024.0, static_cast<double>(units.find(unit[0]) + 1));
  } else {
    return failf("{:?}: unknown unit {:?} (use b, k, m, g, t or p)", text, text.substr(i));
  }
  double bytes = number * mult;
  if (bytes > 9.2e18)
    return failf("{:?} is too large", text);
  return static_cast<int64_t>(bytes);
}

Result<int> parse_duration_ms(const std::string &text) {
  static const std::vector<std::pair<std::string, double>> units = {
      {"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  double total = 0;
  size_t i = 0;
  if (text.empty())
    return fail("--interval: empty duration");
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (i == start)
      return failf("--interval: {:?} is not a duration (like 5s or 500ms)", text);
    double n = std::stod(text.substr(start, i - start));
    size_t ustart = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.')
      ++i;
    std::string unit = text.substr(ustart, i - ustart);
    bool found = false;
    for (const auto &[name, ms] : units)
      if (unit == name) {
        total += n * ms;
        found = true;
      }
    if (!found)
      return failf("--interval: {:?} is not a duration (like 5s or 500ms)", text);
  }
  if (total > 1e9)
    return failf("--interval: {:?} is too long", text);
  return static_cast<int>(std::llround(total));
}

Result<std::string> filter_ps_output(const std::string &output, const std::vector<int> &pids) {
  size_t header_end = output.find('\n');
  std::string header = output.substr(0, header_end);
  // The index of the PID column among the whitespace-separated header words.
  std::vector<std::string> words;
  size_t pos = 0;
  while ((pos = header.find_first_not_of(' ', pos)) != std::string::npos) {
    size_t end = header.find(' ', pos);
    words.push_back(header.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    pos = end;
  }
  size_t column = std::find(words.begin(), words.end(), "PID") - words.begin();
  if (column == words.size())
    return fail("ps output has no PID column (add pid to -o)");
  std::string out = header + "\n";
  if (header_end == std::string::npos)
    return out;
  pos = header_end + 1;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string::npos)
      end = output.size();
    std::string line = output.substr(pos, end - pos);
    pos = end + 1;
    size_t w = 0, at = 0;
    std::string field;
    while ((at = line.find_first_not_of(' ', at)) != std::string::npos) {
      size_t e = line.find(' ', at);
      if (w++ == column) {
        field = line.substr(at, e == std::string::npos ? std::string::npos : e - at);
        break;
      }
      at = e;
    }
    try {
      if (!field.empty() && std::find(pids.begin(), pids.end(), std::stoi(field)) != pids.end())
        out += line + "\n";
    } catch (const std::exception &) {
    }
  }
  return out;
}

std::vector<std::string> split_ps_args(std::vector<std::string> &args,
                                       const std::set<std::string> &value_flags) {
  bool in_ps = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--")
      return {};
    if (a.size() > 1 && a[0] == '-') {
      if (a.find('=') == std::string::npos && value_flags.count(a))
        ++i;
      continue;
    }
    if (!in_ps) {
      if (a != "ps")
        return {}; // another subcommand
      in_ps = true;
      continue;
    }
    std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
    args.resize(i + 1);
    if (!rest.empty() && rest.front() == "--")
      rest.erase(rest.begin());
    return rest;
  }
  return {};
}

} // namespace bulkhead::cli
