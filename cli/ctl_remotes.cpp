// trust add|list|rm and remote add|list|rm: pairing bulkheadd daemons of different hosts
// (docs/remotes.md). `trust add` prints the token alone on its last line, so a script can take it
// with `tail -n1`.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

std::string text_of(const json &j, const char *key) {
  return j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()
             ? j[key].get<std::string>()
             : "-";
}

// "sha256:0123...cdef" -> "sha256:01234567…" for tables; --json has the whole value.
std::string short_fingerprint(const json &j) {
  std::string f = text_of(j, "fingerprint");
  return f.size() > 23 ? f.substr(0, 23) : f;
}

void add_trust(CLI::App &app, Action &chosen) {
  auto *trust = app.add_subcommand("trust", "which other hosts may connect to this daemon (pairing tokens)");
  trust->require_subcommand(1);

  struct AddArgs {
    std::string name, expiry;
    bool json = false;
  };
  auto a = std::make_shared<AddArgs>();
  auto *add = trust->add_subcommand("add", "make a one-time token with which host NAME pairs with this one");
  add->add_option("NAME", a->name, "the other host's name here")->required();
  add->add_option("--expiry", a->expiry, "how long the token is valid (default 1h; e.g. 10m, 2h, 1d)")
      ->type_name("DURATION");
  add->add_flag("--json", a->json, "print the API's answer");
  add->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"name", a->name}};
      if (!a->expiry.empty()) {
        auto s = parse_duration_s(a->expiry);
        if (!s)
          return report("trust add: --expiry " + s.error().message);
        req["expires_in_s"] = *s;
      }
      auto client = ctx.client();
      auto r = client.post("/1.0/trust", req);
      if (!r)
        return report(r.error());
      if (a->json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::string out =
          fmt::format("On host {}, run:\n  bulkheadctl remote add NAME {} --token TOKEN\nwith this "
                      "token (one use, until {}):\n{}\n",
                      a->name, text_of(*r, "listen"), local_time(r->value("expires_at", int64_t{0})),
                      r->value("token", ""));
      return write_out(out) ? 0 : 1;
    };
  });

  auto list_json = std::make_shared<bool>(false);
  auto *list = trust->add_subcommand("list", "trusted hosts and pending tokens");
  list->alias("ls");
  list->add_flag("--json", *list_json, "print the API's objects");
  list->callback([list_json, &chosen] {
    chosen = [list_json](Context &ctx) {
      auto client = ctx.client();
      auto r = client.get("/1.0/trust");
      if (!r)
        return report(r.error());
      if (*list_json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::vector<std::vector<std::string>> rows;
      for (const auto &t : *r)
        rows.push_back({text_of(t, "name"), text_of(t, "state"), short_fingerprint(t),
                        t.value("state", "") == "pending"
                            ? "expires " + local_time(t.value("expires_at", int64_t{0}))
                            : "since " + local_time(t.value("added_at", int64_t{0}))});
      return write_out(render_table({"NAME", "STATE", "FINGERPRINT", "WHEN"}, rows)) ? 0 : 1;
    };
  });

  auto rm_name = std::make_shared<std::string>();
  auto *rm = trust->add_subcommand("rm", "stop trusting a host (or withdraw its pending token)");
  rm->add_option("NAME", *rm_name, "the host")->required();
  rm->callback([rm_name, &chosen] {
    chosen = [rm_name](Context &ctx) {
      auto client = ctx.client();
      auto r = client.del(daemon::api_path("/1.0/trust/", *rm_name));
      return r ? 0 : report(r.error());
    };
  });
}

void add_remote(CLI::App &app, Action &chosen) {
  auto *remote =
      app.add_subcommand("remote", "other hosts' daemons this one connects to (migration, replication)");
  remote->require_subcommand(1);

  struct AddArgs {
    std::string name, address, token;
  };
  auto a = std::make_shared<AddArgs>();
  auto *add = remote->add_subcommand("add", "pair with another host's bulkheadd using its `trust add` token");
  add->add_option("NAME", a->name, "a name for the remote host")->required();
  add->add_option("ADDRESS", a->address, "its bulkheadd --listen address, HOST:PORT")->required();
  add->add_option("--token", a->token, "the token `bulkheadctl trust add` printed there")->required();
  add->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto r =
          client.post("/1.0/remotes", json{{"name", a->name}, {"address", a->address}, {"token", a->token}});
      if (!r)
        return report(r.error());
      return write_out(fmt::format("remote {} added: {} ({}, {})\n", a->name, text_of(*r, "host"), a->address,
                                   text_of(*r, "fingerprint")))
                 ? 0
                 : 1;
    };
  });

  auto list_json = std::make_shared<bool>(false);
  auto *list = remote->add_subcommand("list", "remotes and whether they answer now");
  list->alias("ls");
  list->add_flag("--json", *list_json, "print the API's objects");
  list->callback([list_json, &chosen] {
    chosen = [list_json](Context &ctx) {
      auto client = ctx.client();
      auto r = client.get("/1.0/remotes");
      if (!r)
        return report(r.error());
      if (*list_json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::vector<std::vector<std::string>> rows;
      for (const auto &x : *r)
        rows.push_back({text_of(x, "name"), text_of(x, "address"), text_of(x, "host"), text_of(x, "status"),
                        short_fingerprint(x)});
      return write_out(render_table({"NAME", "ADDRESS", "HOST", "STATUS", "FINGERPRINT"}, rows)) ? 0 : 1;
    };
  });

  auto rm_name = std::make_shared<std::string>();
  auto *rm = remote->add_subcommand("rm", "forget a remote");
  rm->add_option("NAME", *rm_name, "the remote")->required();
  rm->callback([rm_name, &chosen] {
    chosen = [rm_name](Context &ctx) {
      auto client = ctx.client();
      auto r = client.del(daemon::api_path("/1.0/remotes/", *rm_name));
      return r ? 0 : report(r.error());
    };
  });
}

} // namespace

void add_remote_commands(CLI::App &app, Action &chosen) {
  add_trust(app, chosen);
  add_remote(app, chosen);
}

} // namespace bulkhead::ctl
