// network create|list|rm: bulkheadd's managed bridge networks (docs/bulkheadctl.md "Networks").
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

std::string cell(const json &n, const char *key) {
  return n.contains(key) && n[key].is_string() ? n[key].get<std::string>() : "-";
}

void add_create(CLI::App &net, Action &chosen) {
  struct Args {
    std::string name, ipv4, ipv6, uplink;
    std::vector<std::string> dns;
    bool bridge = false, routed = false, nat = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = net.add_subcommand("create", "create a managed bridge network, or a routed one on an uplink");
  c->add_option("NAME", a->name, "the network's name (its bridge is bh-NAME; at most 12 characters)")
      ->required();
  auto *bridge = c->add_flag("--bridge", a->bridge, "a Linux bridge in the daemon's network namespace");
  c->add_flag("--routed", a->routed,
              "routed NICs: /32 and /128 per container behind a veth, proxy ARP/NDP on the uplink")
      ->excludes(bridge);
  c->add_option("--uplink", a->uplink,
                "routed: the host interface that answers ARP/NDP for the containers; --nat: masquerade only "
                "what leaves through it")
      ->type_name("IFACE");
  c->add_option("--ipv4", a->ipv4,
                "the bridge's IPv4 address and subnet, e.g. 198.18.77.1/24 (routed: the containers' subnet)")
      ->type_name("ADDR/LEN");
  c->add_option("--ipv6", a->ipv6,
                "the bridge's IPv6 address and subnet, e.g. fd42:77::1/64 (routed: the containers' subnet)")
      ->type_name("ADDR/LEN");
  c->add_option("--dns", a->dns,
                "a nameserver for the containers' resolv.conf, repeatable (default: the bridge's addresses)")
      ->type_name("ADDR");
  c->add_flag("--nat", a->nat, "masquerade the IPv4 subnet leaving the host (nftables table bulkhead_NAME)");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      if (a->bridge == a->routed)
        return report("network create: give --bridge or --routed");
      if (a->routed && a->uplink.empty())
        return report("network create: --routed needs --uplink IFACE");
      if (a->routed && a->nat)
        return report(
            "network create: --nat is for --bridge networks (a routed NIC's addresses are its own)");
      json req = {{"name", a->name}, {"type", a->routed ? "routed" : "bridge"}};
      if (!a->dns.empty())
        req["dns"] = a->dns;
      if (!a->ipv4.empty())
        req["ipv4"] = a->ipv4;
      if (!a->ipv6.empty())
        req["ipv6"] = a->ipv6;
      if (a->nat)
        req["nat"] = true;
      if (!a->uplink.empty())
        req["uplink"] = a->uplink;
      auto client = ctx.client();
      auto answer = client.post("/1.0/networks", req);
      if (!answer)
        return report(answer.error());
      if (a->routed)
        fmt::print("created network {} (routed on {})\n", a->name, cell(*answer, "uplink"));
      else
        fmt::print("created network {} (bridge {})\n", a->name, cell(*answer, "bridge"));
      return 0;
    };
  });
}

void add_list(CLI::App &net, Action &chosen) {
  auto as_json = std::make_shared<bool>(false);
  auto *c = net.add_subcommand("list", "list the managed networks");
  c->alias("ls");
  c->add_flag("--json", *as_json, "print the API's Network objects");
  c->callback([as_json, &chosen] {
    chosen = [as_json](Context &ctx) {
      return print_list(ctx, "/1.0/networks", *as_json, [](const json &list) {
        std::vector<std::vector<std::string>> rows;
        for (const auto &n : list)
          rows.push_back(
              {cell(n, "name"),
               n.value("type", "") == "routed" ? "routed:" + cell(n, "uplink") : cell(n, "bridge"),
               cell(n, "ipv4"), cell(n, "ipv6"),
               n.contains("mtu") && n["mtu"].is_number() ? std::to_string(n["mtu"].get<unsigned>()) : "-",
               n.value("nat", false)
                   ? (n.contains("uplink") && n["uplink"].is_string() ? "via " + cell(n, "uplink")
                                                                      : std::string("yes"))
                   : std::string("-")});
        return render_table({"NAME", "BRIDGE", "IPV4", "IPV6", "MTU", "NAT"}, rows);
      });
    };
  });
}

void add_rm(CLI::App &net, Action &chosen) {
  auto name = std::make_shared<std::string>();
  auto *c = net.add_subcommand("rm", "remove a network no container uses (and its bridge)");
  c->add_option("NAME", *name, "the network")->required();
  c->callback([name, &chosen] {
    chosen = [name](Context &ctx) {
      auto client = ctx.client();
      auto answer = client.del(daemon::api_path("/1.0/networks/", *name));
      return answer ? 0 : report(answer.error());
    };
  });
}

} // namespace

void add_network_commands(CLI::App &app, Action &chosen) {
  auto *net = app.add_subcommand("network", "manage bridge and routed networks for containers");
  net->require_subcommand(1);
  add_create(*net, chosen);
  add_list(*net, chosen);
  add_rm(*net, chosen);
}

} // namespace bulkhead::ctl
