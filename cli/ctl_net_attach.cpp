// net attach|detach: a NIC added to or removed from a container, hot-plugged when it runs
// (docs/bulkheadctl.md "Networks", docs/network.md "Attaching and detaching NICs").
#include <fmt/core.h>

#include "cli/ctl.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

std::string nic_text(const json &n) {
  std::string v = n.value("network", "-");
  for (const char *k : {"ipv4", "ipv6"})
    if (n.contains(k) && n[k].is_string())
      v += " " + n[k].get<std::string>();
  if (n.contains("host_name") && n["host_name"].is_string())
    v += " (host end " + n["host_name"].get<std::string>() + ")";
  return v;
}

void add_attach(CLI::App &net, Action &chosen) {
  auto name = std::make_shared<std::string>(), spec = std::make_shared<std::string>();
  auto *c = net.add_subcommand(
      "attach",
      "add a NIC to a container: hot-plugged (next free ethN) when it runs, else made at its start");
  c->add_option("NAME", *name, "the container")->required()->check(name_validator());
  c->add_option(
       "NETWORK", *spec,
       "NETWORK[:ipv4=A][,ipv6=B][,ingress=RATE][,egress=RATE], as create --net; addresses not given "
       "are allocated")
      ->required();
  c->callback([name, spec, &chosen] {
    chosen = [name, spec](Context &ctx) {
      auto req = parse_net(*spec, "net attach");
      if (!req)
        return report(req.error());
      auto client = ctx.client();
      auto answer = client.post(daemon::api_path("/1.0/containers/", *name, "/nics"), *req);
      if (!answer)
        return report(answer.error());
      fmt::print("attached {} to {}: {}\n", answer->value("name", "?"), *name, nic_text(*answer));
      return 0;
    };
  });
}

void add_detach(CLI::App &net, Action &chosen) {
  auto name = std::make_shared<std::string>(), nic = std::make_shared<std::string>();
  auto *c = net.add_subcommand("detach", "remove a NIC from a container (at once when it runs) and free its "
                                         "addresses");
  c->add_option("NAME", *name, "the container")->required()->check(name_validator());
  c->add_option("NIC", *nic, "the NIC (eth1), or the network of the container's only NIC on it")->required();
  c->callback([name, nic, &chosen] {
    chosen = [name, nic](Context &ctx) {
      auto client = ctx.client();
      auto answer = client.del(daemon::api_path(daemon::api_path("/1.0/containers/", *name, "/nics/"), *nic));
      if (!answer)
        return report(answer.error());
      fmt::print("detached {} from {}: {}\n", answer->value("name", "?"), *name, nic_text(*answer));
      return 0;
    };
  });
}

} // namespace

void add_net_attach_commands(CLI::App &app, Action &chosen) {
  auto *net = app.add_subcommand("net", "attach NICs to and detach them from containers");
  net->require_subcommand(1);
  add_attach(*net, chosen);
  add_detach(*net, chosen);
}

} // namespace bulkhead::ctl
