#include "daemon/container_config.hpp"

#include <cerrno>
#include <cmath>
#include <regex>
#include <set>

namespace bulkhead::daemon {

using nlohmann::json;

Result<uint64_t> parse_size(const std::string &text) {
  static const std::regex re(R"(^([0-9]+)(\.[0-9]+)?\s*([kKmMgGtT]?)(i?[bB])?$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    return fail("invalid size \"" + text + "\" (expected bytes or a number with K, M, G or T, e.g. 256M)",
                EINVAL);
  double value = std::stod(m[1].str() + m[2].str());
  int shift = 0;
  switch (m[3].str().empty() ? ' ' : std::tolower(m[3].str()[0])) {
  case 'k':
    shift = 10;
    break;
  case 'm':
    shift = 20;
    break;
  case 'g':
    shift = 30;
    break;
  case 't':
    shift = 40;
    break;
  default:
    break;
  }
  double bytes = std::ldexp(value, shift);
  if (bytes >= 1.8e19)
    return fail("size \"" + text + "\" is too large", EINVAL);
  return static_cast<uint64_t>(bytes);
}

Result<RestartPolicy> parse_restart_policy(const std::string &text) {
  RestartPolicy p;
  if (text == "no")
    return p;
  if (text == "always") {
    p.kind = RestartPolicy::Kind::Always;
    return p;
  }
  if (text.rfind("on-failure", 0) == 0) {
    p.kind = RestartPolicy::Kind::OnFailure;
    std::string rest = text.substr(10);
    if (rest.empty())
      return p;
    static const std::regex n(R"(^:([0-9]{1,6})$)");
    if (std::regex_match(rest, n)) {
      p.max_retries = std::stoi(rest.substr(1));
      return p;
    }
  }
  return fail("invalid restart policy \"" + text + "\" (expected no, on-failure[:N] or always)", EINVAL);
}

std::string restart_policy_text(const RestartPolicy &policy) {
  switch (policy.kind) {
  case RestartPolicy::Kind::No:
    return "no";
  case RestartPolicy::Kind::Always:
    return "always";
  case RestartPolicy::Kind::OnFailure:
    return policy.max_retries ? "on-failure:" + std::to_string(policy.max_retries) : "on-failure";
  }
  return "no";
}

json to_json(const IdMap &m) { return {{"uid", m.uid}, {"gid", m.gid}, {"size", m.size}}; }

json to_json(const ContainerConfig &c) {
  json limits = {{"memory", c.limits.memory_bytes ? json(*c.limits.memory_bytes) : json(nullptr)},
                 {"cpus", c.limits.cpus ? json(*c.limits.cpus) : json(nullptr)},
                 {"pids", c.limits.pids ? json(*c.limits.pids) : json(nullptr)}};
  json out = {{"name", c.name},
              {"template", c.template_name},
              {"hostname", c.hostname},
              {"limits", limits},
              {"env", c.env},
              {"restart", restart_policy_text(c.restart)},
              {"onboot", c.onboot},
              {"init", c.init},
              {"stop_signal", c.stop_signal},
              {"created_at", c.created_unix}};
  if (c.storage != "dir" || c.disk.bytes || c.disk.inodes) {
    out["storage"] = c.storage;
    out["disk"] = {{"bytes", c.disk.bytes ? json(*c.disk.bytes) : json(nullptr)},
                   {"inodes", c.disk.inodes ? json(*c.disk.inodes) : json(nullptr)}};
  }
  if (!c.nets.empty()) {
    json nets = json::array();
    for (const auto &n : c.nets)
      nets.push_back({{"network", n.network},
                      {"name", n.name},
                      {"host_name", n.host_name},
                      {"ipv4", n.ipv4},
                      {"ipv6", n.ipv6},
                      {"mac", n.mac},
                      {"ingress", n.ingress},
                      {"egress", n.egress}});
    out["nets"] = nets;
  }
  if (c.idmap)
    out["idmap"] = to_json(*c.idmap);
  if (!c.ports.empty()) {
    json ports = json::array();
    for (const auto &f : c.ports)
      ports.push_back({{"host_port", f.host_port},
                       {"container_port", f.container_port},
                       {"proto", f.proto},
                       {"network", f.network}});
    out["ports"] = ports;
  }
  return out;
}

namespace {

template <class T> Result<T> field(const json &j, const char *name) {
  try {
    return j.at(name).get<T>();
  } catch (const json::exception &) {
    return fail(std::string("record field \"") + name + "\" is missing or has the wrong type", EINVAL);
  }
}

} // namespace

Result<ContainerConfig> config_from_json(const json &j) {
  static const std::set<std::string> known = {"name",    "template", "hostname", "limits",      "env",
                                              "restart", "onboot",   "init",     "stop_signal", "created_at",
                                              "nets",    "storage",  "disk",     "ports",       "idmap"};
  if (!j.is_object())
    return fail("container config is not a JSON object", EINVAL);
  for (const auto &[k, v] : j.items())
    if (!known.count(k))
      return fail("unknown field \"" + k + "\" in container config", EINVAL);
  ContainerConfig c;
  c.name = BH_TRY(field<std::string>(j, "name"));
  c.template_name = BH_TRY(field<std::string>(j, "template"));
  c.hostname = j.value("hostname", std::string());
  if (auto it = j.find("limits"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      return fail("\"limits\" must be an object", EINVAL);
    try {
      if (it->contains("memory") && !(*it)["memory"].is_null())
        c.limits.memory_bytes = (*it)["memory"].get<uint64_t>();
      if (it->contains("cpus") && !(*it)["cpus"].is_null())
        c.limits.cpus = (*it)["cpus"].get<double>();
      if (it->contains("pids") && !(*it)["pids"].is_null())
        c.limits.pids = (*it)["pids"].get<int64_t>();
    } catch (const json::exception &) {
      return fail("\"limits\" has a field of the wrong type", EINVAL);
    }
  }
  try {
    c.env = j.value("env", std::vector<std::string>{});
    c.init = j.value("init", std::vector<std::string>{});
    c.onboot = j.value("onboot", false);
    c.stop_signal = j.value("stop_signal", std::string());
    c.created_unix = j.value("created_at", int64_t{0});
    c.storage = j.value("storage", std::string("dir"));
    if (auto it = j.find("disk"); it != j.end() && !it->is_null()) {
      if (it->contains("bytes") && !(*it)["bytes"].is_null())
        c.disk.bytes = (*it)["bytes"].get<uint64_t>();
      if (it->contains("inodes") && !(*it)["inodes"].is_null())
        c.disk.inodes = (*it)["inodes"].get<uint64_t>();
    }
    if (auto it = j.find("nets"); it != j.end() && !it->is_null())
      for (const auto &n : *it)
        c.nets.push_back({n.at("network").get<std::string>(), n.at("name").get<std::string>(),
                          n.value("host_name", std::string()), n.value("ipv4", std::string()),
                          n.value("ipv6", std::string()), n.value("mac", std::string()),
                          n.value("ingress", std::string()), n.value("egress", std::string())});
    if (auto it = j.find("ports"); it != j.end() && !it->is_null())
      for (const auto &f : *it) {
        auto host = f.at("host_port").get<uint32_t>(), ct = f.at("container_port").get<uint32_t>();
        auto proto = f.at("proto").get<std::string>();
        if (!host || host > 65535 || !ct || ct > 65535 || (proto != "tcp" && proto != "udp"))
          return fail("container config: the port forward " + f.dump() + " is out of range", EINVAL);
        c.ports.push_back({static_cast<uint16_t>(host), static_cast<uint16_t>(ct), proto,
                           f.at("network").get<std::string>()});
      }
    if (auto it = j.find("idmap"); it != j.end() && !it->is_null()) {
      IdMap m{it->at("uid").get<uint32_t>(), it->at("gid").get<uint32_t>(), it->at("size").get<uint32_t>()};
      // Id 0 on the host, or a range past the 32-bit id space, would map root inside to a
      // privileged or invalid id outside.
      if (m.uid == 0 || m.gid == 0 || m.size == 0 || uint64_t{m.uid} + m.size > (uint64_t{1} << 32) - 1 ||
          uint64_t{m.gid} + m.size > (uint64_t{1} << 32) - 1)
        return fail("container config: the id map " + it->dump() + " is out of range", EINVAL);
      c.idmap = m;
    }
  } catch (const json::exception &e) {
    return fail(std::string("container config: ") + e.what(), EINVAL);
  }
  c.restart = BH_TRY(parse_restart_policy(j.value("restart", std::string("no"))));
  return c;
}

} // namespace bulkhead::daemon
