// Container commands: create, start/stop/restart/kill/freeze/unfreeze, destroy, list, info, set, logs.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using daemon::api_path;
using nlohmann::json;

struct Limits {
  std::string memory, cpus, pids, restart, disk, disk_inodes;
};

// The limit flags of create and set; set also takes "none" to remove a limit.
void add_limit_flags(CLI::App *c, Limits &l, bool allow_none) {
  const std::string none = allow_none ? " ('none' removes the limit)" : "";
  c->add_option("--memory", l.memory, "memory limit, e.g. 256M or 1G" + none)
      ->type_name("SIZE")
      ->check(size_validator(allow_none));
  c->add_option("--cpus", l.cpus, "CPU limit in CPUs, e.g. 0.5" + none)
      ->type_name("N")
      ->check(cpus_validator(allow_none));
  c->add_option("--pids", l.pids, "maximum number of processes" + none)
      ->type_name("N")
      ->check(pids_validator(allow_none));
  c->add_option("--restart", l.restart, "restart policy: no, on-failure[:N] or always")
      ->type_name("POLICY")
      ->check(restart_validator());
  c->add_option("--disk", l.disk,
                allow_none ? "grow the disk quota, live (bulkheadd --storage ext4; it cannot shrink)"
                           : "disk quota of the container's own files, e.g. 2G (bulkheadd --storage ext4)")
      ->type_name("SIZE")
      ->check(size_validator(false));
  if (!allow_none) // the inode count of an ext4 image is fixed at create
    c->add_option("--disk-inodes", l.disk_inodes, "maximum number of files (bulkheadd --storage ext4)")
        ->type_name("N")
        ->check(CLI::Validator(
            [](std::string &text) -> std::string {
              if (text.empty() || text.size() > 10 ||
                  text.find_first_not_of("0123456789") != std::string::npos || std::stoull(text) == 0)
                return "\"" + text + "\": not a number of files (a whole number above 0)";
              return {};
            },
            "N"));
}

// Fills the request from the flags given; the values were checked while parsing.
void put_limits(json &req, const Limits &l) {
  if (!l.memory.empty())
    req["memory"] = l.memory == "none" ? json(nullptr) : json(*parse_size(l.memory));
  if (!l.cpus.empty())
    req["cpus"] = l.cpus == "none" ? json(nullptr) : json(*parse_cpus(l.cpus));
  if (!l.pids.empty())
    req["pids"] = l.pids == "none" ? json(nullptr) : json(*parse_pids(l.pids));
  if (!l.restart.empty())
    req["restart"] = l.restart;
  if (!l.disk.empty())
    req["disk"] = *parse_size(l.disk);
  if (!l.disk_inodes.empty())
    req["disk_inodes"] = std::stoull(l.disk_inodes);
}

CLI::Option *add_name(CLI::App *c, std::string &name, const std::string &what = "the container") {
  return c->add_option("NAME", name, what)->required()->check(name_validator());
}

struct CreateArgs {
  std::string name, template_name, hostname;
  Limits limits;
  std::vector<std::string> env, init_flag, nets;
  bool onboot = false, start = false, privileged = false, unprivileged = false;
};

} // namespace

// --net NAME[:ipv4=A][,ipv6=B][,ingress=RATE][,egress=RATE] as the API's NIC object (the caps
// may also follow NAME directly: NAME,ingress=20mbit).
Result<json> parse_net(const std::string &text, const std::string &what) {
  auto colon = text.find_first_of(":,");
  json nic = {{"network", text.substr(0, colon)}};
  if (nic["network"].get<std::string>().empty())
    return fail(what + " " + text + ": give NAME[:ipv4=A][,ipv6=B][,ingress=RATE][,egress=RATE]");
  if (colon == std::string::npos)
    return nic;
  std::string rest = text.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto comma = rest.find(',', pos);
    std::string kv = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    bool known = key == "ipv4" || key == "ipv6" || key == "ingress" || key == "egress";
    if (eq == std::string::npos || !known || eq + 1 == kv.size())
      return fail(what + " " + text +
                  ": expected ipv4=ADDRESS or ipv6=ADDRESS (or ingress=RATE, egress=RATE), got \"" + kv +
                  "\"");
    nic[key] = kv.substr(eq + 1);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return nic;
}

namespace {

// --net-limit [NIC:]ingress=RATE,egress=RATE as {"nic"?, "ingress"?, "egress"?}; the daemon
// checks the rates.
Result<json> parse_net_limit(const std::string &text) {
  json limit = json::object();
  std::string rest = text;
  if (auto colon = text.find(':'); colon != std::string::npos) {
    limit["nic"] = text.substr(0, colon);
    rest = text.substr(colon + 1);
  }
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto comma = rest.find(',', pos);
    std::string kv = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    if (eq == std::string::npos || (key != "ingress" && key != "egress") || eq + 1 == kv.size())
      return fail("--net-limit " + text + ": expected [NIC:]ingress=RATE,egress=RATE, got \"" + kv + "\"");
    limit[key] = kv.substr(eq + 1);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return limit;
}

int create(Context &ctx, const CreateArgs &a) {
  json req = {{"name", a.name}, {"template", a.template_name}};
  put_limits(req, a.limits);
  if (!a.hostname.empty())
    req["hostname"] = a.hostname;
  if (!a.env.empty())
    req["env"] = a.env;
  if (a.onboot)
    req["onboot"] = true;
  if (!a.nets.empty()) {
    json nets = json::array();
    for (const auto &n : a.nets) {
      auto nic = parse_net(n, "--net");
      if (!nic)
        return report(nic.error());
      nets.push_back(*nic);
    }
    req["nets"] = nets;
  }
  if (ctx.init) {
    if (ctx.init->empty() || (*ctx.init)[0].empty())
      return report("--init needs the PATH of the container's init");
    req["init"] = *ctx.init;
  }
  if (a.start)
    req["start"] = true;
  if (a.privileged)
    req["privileged"] = true;
  if (a.unprivileged)
    req["unprivileged"] = true;
  CancelOnInterrupt armed;
  auto client = ctx.client();
  auto answer = client.post("/1.0/containers", req);
  if (!answer)
    return report(answer.error());
  // With "start", the daemon may answer with the start operation rather than the container.
  if (auto done = settle(client, std::move(*answer)); !done)
    return report(done.error());
  return 0;
}

void add_create(CLI::App &app, Action &chosen) {
  auto a = std::make_shared<CreateArgs>();
  auto *c = app.add_subcommand("create", "create a container from a template");
  add_name(c, a->name);
  c->add_option("--template", a->template_name, "the OS template to build it from")
      ->type_name("T")
      ->required()
      ->check(name_validator());
  add_limit_flags(c, a->limits, false);
  c->add_option("--hostname", a->hostname, "hostname inside the container (default: NAME)")->type_name("H");
  c->add_option("--env", a->env, "environment of init, repeatable")->type_name("K=V")->check(env_validator());
  c->add_option("--net", a->nets,
                "a NIC on a bridge or routed network (eth0, eth1, ... in order), repeatable; addresses are "
                "allocated unless given; ingress/egress cap the container's download/upload (tc rates)")
      ->type_name("NAME[:ipv4=A][,ipv6=B][,ingress=RATE][,egress=RATE]");
  c->add_flag("--onboot", a->onboot, "start it when bulkheadd starts");
  c->add_flag("--start", a->start, "start it once created");
  auto *priv =
      c->add_flag("--privileged", a->privileged,
                  "root inside is root on the host (no user namespace): for what needs it "
                  "(a template on a filesystem that cannot be idmapped, software that must be real root)");
  c->add_flag(
       "--unprivileged", a->unprivileged,
       "its own user namespace: ids 0-65535 inside are its own range of host ids (docs/unprivileged.md); "
       "the default unless bulkheadd runs with --privileged-default")
      ->excludes(priv);
  // Parsed before CLI11 sees the line (ctl_values.hpp: split_init); declared for help and man.
  c->add_option("--init", a->init_flag,
                "init to run instead of the template's, with its arguments: takes the rest "
                "of the command line")
      ->type_name("PATH [ARG...]");
  c->callback([a, &chosen] { chosen = [a](Context &ctx) { return create(ctx, *a); }; });
}

struct StateArgs {
  std::string name, signal = "KILL";
  int timeout = -1;
  bool stateful = false, stateless = false;
};

void add_state_command(CLI::App &app, Action &chosen, const std::string &action, const std::string &help,
                       bool has_timeout) {
  auto a = std::make_shared<StateArgs>();
  auto *c = app.add_subcommand(action, help);
  add_name(c, a->name);
  bool stopping = action == "stop" || action == "restart";
  if (has_timeout)
    c->add_option("--timeout", a->timeout,
                  stopping ? "seconds to wait after the stop signal before killing (default 30)"
                           : "seconds to wait for the start")
        ->type_name("S")
        ->check(CLI::Range(0, 86400));
  if (action == "kill")
    c->add_option("SIGNAL", a->signal, "signal name or number (default KILL)")->check(signal_validator());
  if (action == "stop")
    c->add_flag("--stateful", a->stateful,
                "save the running state with CRIU instead of shutting down; the next start resumes it");
  if (action == "start")
    c->add_flag("--stateless", a->stateless, "boot afresh, discarding a state saved by stop --stateful");
  c->callback([a, action, stopping, &chosen] {
    chosen = [a, action, stopping](Context &ctx) {
      json req = {{"action", action}};
      if (a->timeout >= 0)
        req["timeout"] = a->timeout;
      else if (stopping)
        req["timeout"] = 30;
      if (action == "kill")
        req["signal"] = *normalize_signal(a->signal);
      if (a->stateful)
        req["stateful"] = true;
      if (a->stateless)
        req["stateless"] = true;
      return change_state(ctx, a->name, req);
    };
  });
}

void add_destroy(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("destroy", "remove a container and its files");
  add_name(c, a->name);
  c->add_flag("-f,--force", a->force, "stop it first when it is running");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      CancelOnInterrupt armed;
      auto client = ctx.client();
      auto answer = client.del(api_path("/1.0/containers/", a->name, a->force ? "?force=1" : ""));
      if (!answer)
        return report(answer.error());
      if (auto done = settle(client, std::move(*answer)); !done)
        return report(done.error());
      return 0;
    };
  });
}

void add_list(CLI::App &app, Action &chosen) {
  struct Args {
    bool json = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("list", "list the containers");
  c->alias("ls");
  c->add_flag("--json", a->json, "print the API's Container objects");
  c->add_flag("-q,--quiet", a->quiet, "print the names only");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      // People see that the host is being emptied (scripts read --json, -q and GET /1.0/host).
      std::string note;
      if (!a->json && !a->quiet)
        if (auto h = ctx.client().get("/1.0/host"); h)
          note = host_note(*h);
      return print_list(ctx, "/1.0/containers", a->json, [a, note](const nlohmann::json &list) {
        if (!a->quiet)
          return note + container_table(list);
        std::string out;
        for (const auto &c : list)
          if (c.contains("name") && c["name"].is_string())
            out += c["name"].get<std::string>() + "\n";
        return out;
      });
    };
  });
}

void add_info(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("info", "show a container's configuration, state and usage");
  add_name(c, a->name);
  c->add_flag("--json", a->json, "print the API's Container object as it is");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto body = client.get_text(api_path("/1.0/containers/", a->name));
      if (!body)
        return report(body.error());
      if (a->json)
        return print_raw_json(*body);
      auto container = json::parse(*body, nullptr, false);
      if (!container.is_object())
        return report("GET /1.0/containers/" + a->name +
                      ": bulkheadd answered something other than an object");
      std::string note;
      if (auto h = client.get("/1.0/host"); h)
        note = host_note(*h);
      return write_out(container_view(container) + note) ? 0 : 1;
    };
  });
}

void add_set(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name;
    Limits limits;
    std::vector<std::string> net_limits;
    bool onboot = false, no_onboot = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("set", "change limits and policies (applied live when running, and saved)");
  add_name(c, a->name);
  add_limit_flags(c, a->limits, true);
  auto *on = c->add_flag("--onboot", a->onboot, "start it when bulkheadd starts");
  c->add_flag("--no-onboot", a->no_onboot, "do not start it when bulkheadd starts")->excludes(on);
  c->add_option("--net-limit", a->net_limits,
                "bandwidth caps of a NIC (default eth0), live when running; 'none' removes one; repeatable")
      ->type_name("[NIC:]ingress=RATE,egress=RATE");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = json::object();
      put_limits(req, a->limits);
      for (const auto &text : a->net_limits) {
        auto limit = parse_net_limit(text);
        if (!limit)
          return report(limit.error());
        req["net_limits"].push_back(*limit);
      }
      if (a->onboot || a->no_onboot)
        req["onboot"] = a->onboot;
      if (req.empty())
        return report("set: nothing to change: give --memory, --cpus, --pids, --disk, --restart, --onboot, "
                      "--no-onboot or --net-limit");
      auto client = ctx.client();
      auto answer = client.patch(api_path("/1.0/containers/", a->name), req);
      return answer ? 0 : report(answer.error());
    };
  });
}

void add_logs(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name;
    bool follow = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("logs", "print the container's console output");
  add_name(c, a->name);
  c->add_flag("-f,--follow", a->follow, "keep printing new output");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      if (!a->follow) {
        auto text = client.get_text(api_path("/1.0/containers/", a->name, "/logs"));
        if (!text)
          return report(text.error());
        return write_out(*text) ? 0 : 1;
      }
      auto streamed = client.stream_raw(api_path("/1.0/containers/", a->name, "/logs?follow=1"),
                                        [](std::string_view data) { return write_out(data); });
      return streamed ? 0 : report(streamed.error());
    };
  });
}

} // namespace

void add_container_commands(CLI::App &app, Action &chosen) {
  add_create(app, chosen);
  add_state_command(app, chosen, "start", "start a container", true);
  add_state_command(app, chosen, "stop", "stop a container: its stop signal, then KILL after the timeout",
                    true);
  add_state_command(app, chosen, "restart", "stop, then start a container", true);
  add_state_command(app, chosen, "kill", "send a signal to a container's init", false);
  add_destroy(app, chosen);
  add_list(app, chosen);
  add_info(app, chosen);
  add_set(app, chosen);
  add_state_command(app, chosen, "freeze", "freeze every process of a container", false);
  add_state_command(app, chosen, "unfreeze", "thaw a frozen container", false);
  add_logs(app, chosen);
}

} // namespace bulkhead::ctl
