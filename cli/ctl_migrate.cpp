// migrate: moves a container to a paired remote (docs/migration.md); the source daemon does the
// work as an operation, this command starts it and shows its progress and result.
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

using nlohmann::json;

void add_migrate_commands(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name, remote;
    bool cold = false, live = false, json = false;
    int precopy_rounds = -1;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("migrate", "move a container to a paired remote host (same name, addresses "
                                          "and MACs; removed here once it runs there)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("REMOTE", a->remote, "the remote (bulkheadctl remote list)")
      ->required()
      ->check(name_validator());
  auto *cold = c->add_flag("--cold", a->cold,
                           "stop it, move its files, start it there (the default for a stopped container)");
  c->add_flag(
       "--live", a->live,
       "move it with its memory: checkpoint, restore there (CRIU; the default for a running container)")
      ->excludes(cold);
  c->add_option("--precopy-rounds", a->precopy_rounds,
                "live: at most N rounds of memory copied while it runs (default 6; 0 = stop and copy, "
                "all memory in the freeze)")
      ->check(CLI::Range(0, 16))
      ->excludes(cold);
  c->add_flag("--json", a->json,
              "print the operation's metadata (mode, remote, bytes, downtime_ms, total_ms, iterations)");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"remote", a->remote}};
      if (a->cold)
        req["mode"] = "cold";
      if (a->live)
        req["mode"] = "live";
      if (a->precopy_rounds >= 0)
        req["precopy_rounds"] = a->precopy_rounds;
      auto op = post_and_wait(ctx, "migrating", a->name,
                              daemon::api_path("/1.0/containers/", a->name, "/migrate"), req);
      if (!op)
        return report(op.error());
      auto m = operation_metadata(*op);
      if (a->json) {
        fmt::print("{}\n", m.dump());
        return 0;
      }
      int rounds = m.value("iterations", 0);
      fmt::print("migrated {} to {} ({}, {}): {} sent{}{}\n", a->name, a->remote,
                 m.value("address", std::string("?")), m.value("mode", std::string("?")),
                 human_size(m.value("bytes", uint64_t{0})),
                 rounds > 0 ? fmt::format(" ({} of it in {} pre-copy round{} while it ran)",
                                          human_size(m.value("precopy_bytes", uint64_t{0})), rounds,
                                          rounds == 1 ? "" : "s")
                            : std::string(),
                 m.value("was_running", false)
                     ? fmt::format(", running there; downtime {} ms of {} ms",
                                   m.value("downtime_ms", int64_t{0}), m.value("total_ms", int64_t{0}))
                     : std::string(", stopped there"));
      return 0;
    };
  });
}

} // namespace bulkhead::ctl
