// protect, unprotect and replica list|activate: continuous replication of a container to a standby
// host and the replicas this host holds as a standby (docs/replication.md). The daemon does the
// work; these commands ask and print.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

using nlohmann::json;

namespace {

// "2s", "1500ms", "1m" or plain seconds -> milliseconds.
Result<int64_t> parse_interval_ms(const std::string &text) {
  auto ms = parse_duration_ms(text, 1000);
  if (!ms)
    return fail("--interval \"" + text + "\": expected a duration such as 2s, 1500ms or 1m", EINVAL);
  return ms;
}

std::string str(const json &j, const char *key) {
  return j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()
             ? j[key].get<std::string>()
             : "-";
}

void add_protect(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name, standby, interval, mode;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("protect", "replicate a container continuously to a standby host (a paired "
                                          "remote named as that host's --host-name)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("--standby", a->standby, "the standby host (bulkheadctl remote list)")->required();
  c->add_option("--interval", a->interval, "how often a consistent image set goes (default 2s, at least 1s)")
      ->type_name("DURATION");
  c->add_option("--mode", a->mode,
                "memory: CRIU images with dirty-page tracking + disk (default); disk: the disk only")
      ->check(CLI::IsMember({"memory", "disk"}));
  c->add_flag("--json", a->json, "print the API's answer");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"standby", a->standby}};
      if (!a->interval.empty()) {
        auto ms = parse_interval_ms(a->interval);
        if (!ms)
          return report("protect: " + ms.error().message);
        req["interval_ms"] = *ms;
      }
      if (!a->mode.empty())
        req["mode"] = a->mode;
      auto client = ctx.client();
      auto r = client.post(daemon::api_path("/1.0/containers/", a->name, "/protect"), req);
      if (!r)
        return report(r.error());
      if (a->json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      return write_out(fmt::format("{} is protected: {} replication to {} every {} ms\n", a->name,
                                   str(*r, "mode"), str(*r, "standby"), r->value("interval_ms", int64_t{0})))
                 ? 0
                 : 1;
    };
  });
}

void add_unprotect(CLI::App &app, Action &chosen) {
  auto name = std::make_shared<std::string>();
  auto *c = app.add_subcommand("unprotect", "stop replicating a container; its standby drops its replica");
  c->add_option("NAME", *name, "the container")->required()->check(name_validator());
  c->callback([name, &chosen] {
    chosen = [name](Context &ctx) {
      auto client = ctx.client();
      auto r = client.del(daemon::api_path("/1.0/containers/", *name, "/protect"));
      if (!r)
        return report(r.error());
      if (r->value("standby_dropped", false))
        return write_out(
                   fmt::format("{} is unprotected; {} dropped its replica\n", *name, str(*r, "standby")))
                   ? 0
                   : 1;
      return write_out(fmt::format("{} is unprotected; {}\n", *name, str(*r, "note"))) ? 0 : 1;
    };
  });
}

void add_replica(CLI::App &app, Action &chosen) {
  auto *replica =
      app.add_subcommand("replica", "replicas this host holds as a standby (bulkheadctl protect)");
  replica->require_subcommand(1);
  auto list_json = std::make_shared<bool>(false);
  auto *list = replica->add_subcommand("list", "the replicas held here: name, source host, mode, age, size");
  list->alias("ls");
  list->add_flag("--json", *list_json, "print the API's objects (GET /1.0/replicas)");
  list->callback([list_json, &chosen] {
    chosen = [list_json](Context &ctx) {
      auto client = ctx.client();
      auto r = client.get("/1.0/replicas");
      if (!r)
        return report(r.error());
      if (*list_json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::vector<std::vector<std::string>> rows;
      for (const auto &x : *r)
        rows.push_back({str(x, "name"), str(x, "source_host"),
                        str(x, "mode") + (x.value("memory", false) ? "" : " (disk set)"), str(x, "state"),
                        fmt::format("{:.1f}s", static_cast<double>(x.value("age_ms", int64_t{0})) / 1000.0),
                        human_size(x.value("bytes", uint64_t{0}))});
      return write_out(render_table({"NAME", "SOURCE", "MODE", "STATE", "AGE", "SIZE"}, rows)) ? 0 : 1;
    };
  });
  struct ActArgs {
    std::string name;
    bool json = false;
  };
  auto a = std::make_shared<ActArgs>();
  auto *act = replica->add_subcommand(
      "activate", "run here the replica of NAME (a failover by hand): restored from its memory images, or "
                  "booted from its disk");
  act->add_option("NAME", a->name, "the replicated container")->required()->check(name_validator());
  act->add_flag("--json", a->json, "print the API's answer");
  act->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto r = client.post(daemon::api_path("/1.0/replicas/", a->name, "/activate"), json::object());
      if (!r)
        return report(r.error());
      if (a->json)
        return write_out(r->dump(2) + "\n") ? 0 : 1;
      std::string how = str(*r, "how");
      std::string what = how == "restored" ? "restored from its memory images"
                         : how == "booted" ? "booted from its disk"
                                           : "imported, stopped (it was stopped on its source)";
      std::string note = r->contains("note") ? " (" + str(*r, "note") + ")" : "";
      return write_out(fmt::format("{} {} here: {}; replica of {}, {:.1f}s old{}\n", a->name,
                                   how == "stopped" ? "is" : "runs", what, str(*r, "source_host"),
                                   static_cast<double>(r->value("age_ms", int64_t{0})) / 1000.0, note))
                 ? 0
                 : 1;
    };
  });
}

} // namespace

void add_replica_commands(CLI::App &app, Action &chosen) {
  add_protect(app, chosen);
  add_unprotect(app, chosen);
  add_replica(app, chosen);
}

} // namespace bulkhead::ctl
