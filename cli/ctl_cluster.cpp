// cluster list: the hosts of the etcd-backed cluster this host's bulkheadd joined with --cluster
// (docs/cluster.md "Hosts in the cluster"), each with its state and its containers. The daemon
// reads them from etcd, so any member answers for all of them.
// cluster token NAME / cluster join --token T: one trust for the whole cluster (docs/remotes.md);
// `cluster token` prints the token alone on its last line, so a script can take it with `tail -n1`.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

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

void add_cluster_token(CLI::App *cluster, Action &chosen) {
  struct Args {
    std::string name, expiry;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = cluster->add_subcommand(
      "token",
      "make a one-time token with which host NAME joins the cluster's trust (made once: the cluster key)");
  c->add_option("NAME", a->name, "the joining host's --host-name")->required();
  c->add_option("--expiry", a->expiry, "how long the token is valid (default 1h; e.g. 10m, 2h, 1d)")
      ->type_name("DURATION");
  c->add_flag("--json", a->json, "print the API's answer");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"name", a->name}};
      if (!a->expiry.empty()) {
        auto s = parse_duration_s(a->expiry);
        if (!s)
          return report("cluster token: --expiry " + s.error().message);
        req["expires_in_s"] = *s;
      }
      auto client = ctx.client();
      auto r = client.post("/1.0/cluster/tokens", req);
      if (!r)
        return report(r.error());
      if (a->json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      return write_out(fmt::format("On host {}, run:\n  bulkheadctl cluster join --token TOKEN\nwith this "
                                   "token (one use, only by {}, until {}):\n{}\n",
                                   a->name, a->name, local_time(r->value("expires_at", int64_t{0})),
                                   r->value("token", "")))
                 ? 0
                 : 1;
    };
  });
}

void add_cluster_join(CLI::App *cluster, Action &chosen) {
  struct Args {
    std::string token, address;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = cluster->add_subcommand(
      "join",
      "join the cluster's trust with a `cluster token` from a member: every member then trusts this host");
  c->add_option("--token", a->token, "the token `bulkheadctl cluster token` printed on a member")->required();
  c->add_option("--address", a->address,
                "the member's --listen address (default: found in etcd by the token's certificate)")
      ->type_name("HOST:PORT");
  c->add_flag("--json", a->json, "print the API's answer");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"token", a->token}};
      if (!a->address.empty())
        req["address"] = a->address;
      auto client = ctx.client();
      auto r = client.post("/1.0/cluster/join", req);
      if (!r)
        return report(r.error());
      if (a->json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::string members;
      for (const auto &m : r->value("members", json::array()))
        if (m.is_string())
          members += (members.empty() ? "" : ", ") + m.get<std::string>();
      return write_out(fmt::format("joined the cluster's trust through {} ({}), key {}\ntrusted hosts: {}\n",
                                   r->value("through", ""), r->value("address", ""), r->value("key_id", ""),
                                   members))
                 ? 0
                 : 1;
    };
  });
}

void add_cluster_rebalance(CLI::App *cluster, Action &chosen) {
  auto a = std::make_shared<MoveFlags>();
  auto *c = cluster->add_subcommand(
      "rebalance",
      "move some of this host's containers to the least loaded hosts of the cluster until it "
      "holds at most one more than the least loaded (each as migrate moves it; stopped ones first)");
  c->add_flag("--dry-run", a->dry_run,
              "print what would move where and what would be refused; nothing changes");
  add_move_flags(c, *a);
  c->add_flag("--json", a->json,
              "print the operation's metadata (as host evacuate's, with \"rebalance\": true)");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      return run_host_moves(ctx, "/1.0/cluster/rebalance", move_request(*a),
                            a->dry_run ? "checking a rebalance" : "rebalancing", a->json);
    };
  });
}

} // namespace

void add_cluster_commands(CLI::App &app, Action &chosen) {
  auto *cluster =
      app.add_subcommand("cluster", "the etcd-backed cluster this host joined (bulkheadd --cluster)");
  cluster->require_subcommand(1);
  add_cluster_list(cluster, chosen);
  add_cluster_token(cluster, chosen);
  add_cluster_join(cluster, chosen);
  add_cluster_rebalance(cluster, chosen);
}

} // namespace bulkhead::ctl
