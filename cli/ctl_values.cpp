#include "cli/ctl_values.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <string.h>

namespace bulkhead::ctl {

namespace {

std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(const std::string &s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

} // namespace

Result<uint64_t> parse_size(const std::string &text) {
  auto bad = [&] { return failf("\"{}\": not a size (examples: 256M, 1.5G, 1048576)", text); };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    i++;
  std::string number = text.substr(0, i), unit = lower(text.substr(i));
  if (number.empty() || number.front() == '.' || std::count(number.begin(), number.end(), '.') > 1)
    return bad();
  if (unit.size() > 1 && unit.back() == 'b')
    unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'i')
    unit.pop_back();
  static const std::string kUnits = "kmgtp";
  int shift = 0;
  if (unit == "b" || unit.empty()) {
    shift = 0;
  } else if (unit.size() == 1 && kUnits.find(unit[0]) != std::string::npos) {
    shift = 10 * (static_cast<int>(kUnits.find(unit[0])) + 1);
  } else {
    return bad();
  }
  long double value = std::strtold(number.c_str(), nullptr) * std::ldexp(1.0L, shift);
  if (!std::isfinite(value) || value >= 18446744073709551615.0L)
    return failf("\"{}\": size too large", text);
  if (value < 1)
    return failf("\"{}\": a size must be at least 1 byte", text);
  return static_cast<uint64_t>(std::llround(value));
}

Status check_name(const std::string &name) {
  bool ok = !name.empty() && name.size() <= 63 && name.front() != '-';
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok)
    return failf("\"{}\": not a valid name (lower-case letters, digits and '-', at most 63, not starting "
                 "with '-')",
                 name);
  return {};
}

Status check_restart(const std::string &policy) {
  if (policy == "no" || policy == "always" || policy == "on-failure")
    return {};
  if (policy.rfind("on-failure:", 0) == 0 && all_digits(policy.substr(11)) && policy.size() <= 11 + 6)
    return {};
  return failf("\"{}\": not a restart policy (no, on-failure, on-failure:N, always)", policy);
}

Status check_env(const std::string &entry) {
  auto eq = entry.find('=');
  if (eq == std::string::npos || eq == 0)
    return failf("\"{}\": not KEY=VALUE", entry);
  return {};
}

Result<double> parse_cpus(const std::string &text) {
  char *end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v <= 0 || v > 4096)
    return failf("\"{}\": not a number of CPUs (a number above 0, e.g. 0.5 or 2)", text);
  return v;
}

Result<int64_t> parse_pids(const std::string &text) {
  if (!all_digits(text) || text.size() > 9 || std::stoll(text) < 1)
    return failf("\"{}\": not a pids limit (a whole number above 0)", text);
  return std::stoll(text);
}

Result<std::string> normalize_signal(const std::string &text) {
  if (all_digits(text) && text.size() <= 2) {
    int n = std::stoi(text);
    if (const char *abbrev = n > 0 && n < NSIG ? ::sigabbrev_np(n) : nullptr)
      return std::string(abbrev);
  }
  std::string name = text;
  for (char &c : name)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0)
    name.erase(0, 3);
  for (int n = 1; n < NSIG; n++)
    if (const char *abbrev = ::sigabbrev_np(n); abbrev && name == abbrev)
      return name;
  return failf("\"{}\": not a signal (a name such as TERM or a number)", text);
}

std::optional<std::vector<std::string>> split_init(std::vector<std::string> &args) {
  // The subcommand is the first word that is not a global flag or the value of --socket.
  size_t i = 0;
  while (i < args.size() && args[i].rfind("-", 0) == 0)
    i += args[i] == "--socket" ? 2 : 1;
  if (i >= args.size() || args[i] != "create")
    return std::nullopt;
  for (size_t j = i + 1; j < args.size(); j++) {
    if (args[j] == "--")
      return std::nullopt;
    if (args[j] == "--init" || args[j].rfind("--init=", 0) == 0) {
      std::vector<std::string> init;
      if (args[j] != "--init")
        init.push_back(args[j].substr(7));
      init.insert(init.end(), args.begin() + static_cast<long>(j) + 1, args.end());
      args.resize(j);
      return init;
    }
  }
  return std::nullopt;
}

namespace {

Result<uint16_t> port_number(const std::string &text, const std::string &spec, const char *what) {
  bool digits = !text.empty() && text.size() <= 5 && std::all_of(text.begin(), text.end(), ::isdigit);
  unsigned long v = digits ? std::stoul(text) : 0;
  if (!digits || v < 1 || v > 65535)
    return failf("\"{}\": {} '{}' is not a port (a number from 1 to 65535)", spec, what, text);
  return static_cast<uint16_t>(v);
}

} // namespace

Result<PortSpec> parse_port_spec(const std::string &text, bool with_container_port) {
  PortSpec p;
  std::string ports = text;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    p.proto = text.substr(slash + 1);
    ports = text.substr(0, slash);
    if (p.proto != "tcp" && p.proto != "udp")
      return failf("\"{}\": protocol '{}': tcp or udp", text, p.proto);
  }
  auto colon = ports.find(':');
  if (with_container_port != (colon != std::string::npos))
    return failf("\"{}\": give {}", text,
                 with_container_port ? "HOSTPORT:CTPORT[/tcp|udp]" : "HOSTPORT[/tcp|udp]");
  p.host_port = BH_TRY(port_number(ports.substr(0, colon), text, "host port"));
  if (with_container_port)
    p.container_port = BH_TRY(port_number(ports.substr(colon + 1), text, "container port"));
  return p;
}

Result<int64_t> parse_duration_ms(const std::string &text, int64_t plain_ms) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  std::string unit = text.substr(used);
  int64_t mul = unit.empty()   ? plain_ms
                : unit == "ms" ? 1
                : unit == "s"  ? 1000
                : unit == "m"  ? 60'000
                : unit == "h"  ? 3'600'000
                : unit == "d"  ? 86'400'000
                               : 0;
  if (used == 0 || n <= 0 || mul == 0)
    return fail("\"" + text + "\": expected a duration such as 1500ms, 2s, 10m, 2h or 1d", EINVAL);
  return n * mul;
}

Result<int64_t> parse_duration_s(const std::string &text) {
  int64_t ms = BH_TRY(parse_duration_ms(text, 1000));
  if (ms % 1000 != 0)
    return fail("\"" + text + "\": expected whole seconds, such as 600, 10m, 2h or 1d", EINVAL);
  return ms / 1000;
}

} // namespace bulkhead::ctl
