// port add|rm|list: host port forwards to containers on NATed networks (docs/bulkheadctl.md
// "Port forwards", docs/network.md "Port forwards").
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

std::string text(const json &p, const char *key) {
  if (!p.contains(key))
    return "-";
  if (p[key].is_string())
    return p[key].get<std::string>();
  if (p[key].is_number())
    return std::to_string(p[key].get<int64_t>());
  return "-";
}

void add_port_add(CLI::App &grp, Action &chosen) {
  auto a = std::make_shared<std::pair<std::string, std::string>>();
  auto *c = grp.add_subcommand("add", "forward a host port to a container (DNAT on its NATed network)");
  c->add_option("NAME", a->first, "the container (it needs a NIC on a network made with --nat)")->required();
  c->add_option("SPEC", a->second,
                "HOSTPORT:CTPORT[/tcp|udp], e.g. 8080:80 or 5353:53/udp (tcp when no protocol is given)")
      ->required();
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto parsed = parse_port_spec(a->second, true);
      if (!parsed)
        return report("port add: " + parsed.error().message);
      const auto &spec = *parsed;
      json req = {
          {"host_port", spec.host_port}, {"container_port", spec.container_port}, {"proto", spec.proto}};
      auto client = ctx.client();
      auto answer = client.post(daemon::api_path("/1.0/containers/", a->first, "/ports"), req);
      if (!answer)
        return report(answer.error());
      fmt::print("forwarding host port {}/{} to {} {}:{}{}\n", spec.host_port, spec.proto, a->first,
                 text(*answer, "address"), spec.container_port,
                 answer->value("active", false) ? "" : " (when it runs)");
      return 0;
    };
  });
}

void add_port_rm(CLI::App &grp, Action &chosen) {
  auto a = std::make_shared<std::pair<std::string, std::string>>();
  auto *c = grp.add_subcommand("rm", "remove a container's forward of a host port");
  c->add_option("NAME", a->first, "the container")->required();
  c->add_option("HOSTPORT", a->second, "HOSTPORT[/tcp|udp] (tcp when no protocol is given)")->required();
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto parsed = parse_port_spec(a->second, false);
      if (!parsed)
        return report("port rm: " + parsed.error().message);
      const auto &spec = *parsed;
      auto client = ctx.client();
      auto answer = client.del(daemon::api_path("/1.0/containers/", a->first,
                                                fmt::format("/ports/{}/{}", spec.host_port, spec.proto)));
      return answer ? 0 : report(answer.error());
    };
  });
}

void add_port_list(CLI::App &grp, Action &chosen) {
  struct Args {
    std::string name;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = grp.add_subcommand("list", "list the port forwards of one container or of all");
  c->alias("ls");
  c->add_option("NAME", a->name, "only this container's");
  c->add_flag("--json", a->json, "print the API's Port objects");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      std::string path =
          a->name.empty() ? "/1.0/ports" : daemon::api_path("/1.0/containers/", a->name, "/ports");
      return print_list(ctx, path, a->json, [](const nlohmann::json &list) {
        std::vector<std::vector<std::string>> rows;
        for (const auto &p : list)
          rows.push_back({text(p, "container"), text(p, "host_port") + "/" + text(p, "proto"),
                          text(p, "address") + ":" + text(p, "container_port"), text(p, "network"),
                          p.value("active", false) ? "yes" : "no"});
        return render_table({"CONTAINER", "HOST PORT", "TO", "NETWORK", "ACTIVE"}, rows);
      });
    };
  });
}

} // namespace

void add_port_commands(CLI::App &app, Action &chosen) {
  auto *grp = app.add_subcommand("port", "forward host ports to containers on NATed networks");
  grp->require_subcommand(1);
  add_port_add(*grp, chosen);
  add_port_rm(*grp, chosen);
  add_port_list(*grp, chosen);
}

} // namespace bulkhead::ctl
