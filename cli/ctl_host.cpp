// host info and host evacuate: the host as a whole (docs/migration.md "Evacuating a host"). The
// evacuation is one operation in the daemon, which moves each container with migrate; this
// command starts it, shows its progress and prints one row per container, also when it failed.
#include <unistd.h>

#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

using nlohmann::json;

namespace {

void add_host_info(CLI::App *host, Action &chosen) {
  struct Args {
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = host->add_subcommand("info", "show this host's state (normal, or evacuating and to where)");
  c->add_flag("--json", a->json, "print the API's answer (GET /1.0/host) as it is");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto body = client.get_text("/1.0/host");
      if (!body)
        return report(body.error());
      if (a->json)
        return print_raw_json(*body);
      auto h = json::parse(*body, nullptr, false);
      if (!h.is_object())
        return report("GET /1.0/host: bulkheadd answered something other than an object");
      return write_out(host_view(h)) ? 0 : 1;
    };
  });
}

} // namespace

void add_move_flags(CLI::App *c, MoveFlags &f) {
  c->add_option("--parallel", f.parallel, "at most N migrations at once (1 to 8)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  auto *cold = c->add_flag("--cold", f.cold, "stop, move and start each running container");
  c->add_flag("--live", f.live,
              "move running containers with their memory (CRIU; the default); stopped ones move cold")
      ->excludes(cold);
}

json move_request(const MoveFlags &f) {
  json req = {{"parallel", f.parallel}};
  if (f.cold)
    req["mode"] = "cold";
  if (f.live)
    req["mode"] = "live";
  if (f.dry_run)
    req["dry_run"] = true;
  return req;
}

int run_host_moves(Context &ctx, const std::string &path, const json &req, const std::string &label,
                   bool as_json) {
  CancelOnInterrupt armed;
  auto client = ctx.client();
  auto answer = client.post(path, req);
  if (!answer)
    return report(answer.error());
  std::string id = answer->is_object() ? answer->value("id", std::string()) : std::string();
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  size_t drawn = 0;
  auto on_progress = [&](const json &op) {
    if (!tty)
      return;
    const json p = op.value("progress", json::object());
    std::string line = fmt::format("{}: {} ({} of {} done)", label, p.value("stage", std::string("starting")),
                                   p.value("done", 0), p.value("total", 0));
    fmt::print("\r{}{}", line, std::string(drawn > line.size() ? drawn - line.size() : 0, ' '));
    std::fflush(stdout);
    drawn = line.size();
  };
  auto done = settle(client, std::move(*answer), on_progress);
  if (tty && drawn)
    fmt::print("\r{}\r", std::string(drawn, ' '));
  // A failed evacuation still has its per-container results: the operation is kept a while.
  json op;
  if (done)
    op = *done;
  else if (auto got = client.get(daemon::api_path("/1.0/operations/", id)); got && !id.empty())
    op = *got;
  json m = operation_metadata(op);
  if (as_json && !m.empty())
    fmt::print("{}\n", m.dump());
  else if (m.contains("containers"))
    (void)write_out(evacuation_table(m));
  if (!done)
    return report(done.error());
  return 0;
}

namespace {

void add_evacuate(CLI::App *host, Action &chosen) {
  struct Args : MoveFlags {
    std::string remote;
  };
  auto a = std::make_shared<Args>();
  auto *c = host->add_subcommand(
      "evacuate", "move every container of this host to a paired remote, or in a cluster without REMOTE "
                  "to the cluster's online hosts (each as migrate moves it); new containers are refused "
                  "meanwhile");
  c->add_option("REMOTE", a->remote,
                "the remote (bulkheadctl remote list); left out in a cluster: each container goes to the "
                "online paired host running the fewest")
      ->check(name_validator());
  c->add_flag("--dry-run", a->dry_run,
              "ask the remote about each container and print what would move and what would be refused; "
              "nothing changes");
  add_move_flags(c, *a);
  c->add_flag("--json", a->json,
              "print the operation's metadata: {\"remote\", \"containers\": [{\"name\", \"state\", \"mode\", "
              "\"result\", \"error\", \"downtime_ms\", \"bytes\"}...], ...}");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = move_request(*a);
      if (!a->remote.empty())
        req["remote"] = a->remote;
      std::string label = fmt::format("{} to {}", a->dry_run ? "checking an evacuation" : "evacuating",
                                      a->remote.empty() ? std::string("the cluster") : a->remote);
      return run_host_moves(ctx, "/1.0/host/evacuate", req, label, a->json);
    };
  });
}

} // namespace

void add_host_commands(CLI::App &app, Action &chosen) {
  auto *host = app.add_subcommand("host", "this host as a whole: its state, evacuation to a remote");
  host->require_subcommand(1);
  add_host_info(host, chosen);
  add_evacuate(host, chosen);
}

} // namespace bulkhead::ctl
