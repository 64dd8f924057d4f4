// cluster list: the hosts of the etcd-backed cluster this host's bulkheadd joined with --cluster
// (docs/cluster.md "Hosts in the cluster"), each with its state and its containers. The daemon
// reads them from etcd, so any member answers for all of them.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"

namespace bulkhead::ctl {

using nlohmann::json;

namespace {

void add_cluster_list(CLI::App *cluster, Action &chosen) {
  struct Args {
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = cluster->add_subcommand("list", "list the cluster's hosts, their state and their containers");
  c->add_flag("--json", a->json, "print the API's answer (GET /1.0/cluster) as it is");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto body = client.get_text("/1.0/cluster");
      if (!body)
        return report(body.error());
      if (a->json)
        return print_raw_json(*body);
      auto c = json::parse(*body, nullptr, false);
      if (!c.is_object())
        return report("GET /1.0/cluster: bulkheadd answered something other than an object");
      // Not an error: a single host simply is not part of a cluster.
      if (!c.value("enabled", false))
        return write_out("this host is not in a cluster (bulkheadd runs without --cluster)\n") ? 0 : 1;
      return write_out(cluster_table(c)) ? 0 : 1;
    };
  });
}

} // namespace

void add_cluster_commands(CLI::App &app, Action &chosen) {
  auto *cluster =
      app.add_subcommand("cluster", "the etcd-backed cluster this host joined (bulkheadd --cluster)");
  cluster->require_subcommand(1);
  add_cluster_list(cluster, chosen);
}

} // namespace bulkhead::ctl
