// checkpoint, restore: a running container's memory kept with a snapshot of its files, and brought
// back running (CRIU through the container's monitor; docs/checkpoint.md, "bulkheadd").
#include <fmt/core.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

void add_checkpoint(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name, snap;
    bool stop = false, json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("checkpoint", "save a running container's memory and files as a snapshot "
                                             "(CRIU; the container runs on unless --stop)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("SNAPSHOT", a->snap, "the snapshot's name (default ckpt-YYYYMMDD-HHMMSS, UTC)")
      ->check(name_validator());
  c->add_flag("--stop", a->stop, "stop the container after the dump (its state lives on in the snapshot)");
  c->add_flag("--json", a->json, "print the operation's metadata");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"stop", a->stop}};
      if (!a->snap.empty())
        req["snapshot"] = a->snap;
      auto op = post_and_wait(ctx, "checkpointing", a->name,
                              daemon::api_path("/1.0/containers/", a->name, "/checkpoint"), req);
      if (!op)
        return report(op.error());
      auto m = operation_metadata(*op);
      if (a->json) {
        fmt::print("{}\n", m.dump());
        return 0;
      }
      fmt::print("checkpoint {} of {}: {} of files, {:.2f} s{}\n", m.value("name", std::string("?")), a->name,
                 human_size(m.value("size_bytes", uint64_t{0})), m.value("seconds", 0.0),
                 a->stop ? "; stopped" : "; running on");
      return 0;
    };
  });
}

void add_restore(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name, snap;
  };
  auto a = std::make_shared<Args>();
  auto *c = app.add_subcommand("restore", "bring a container back running as a checkpoint saved it (a "
                                          "running container is stopped first)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("SNAPSHOT", a->snap, "the checkpoint (default: the newest)")->check(name_validator());
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = json::object();
      if (!a->snap.empty())
        req["snapshot"] = a->snap;
      auto op = post_and_wait(ctx, "restoring", a->name,
                              daemon::api_path("/1.0/containers/", a->name, "/restore"), req);
      if (!op)
        return report(op.error());
      fmt::print("restored {} from {}\n", a->name,
                 a->snap.empty() ? std::string("its newest checkpoint") : a->snap);
      return 0;
    };
  });
}

} // namespace

void add_checkpoint_commands(CLI::App &app, Action &chosen) {
  add_checkpoint(app, chosen);
  add_restore(app, chosen);
}

} // namespace bulkhead::ctl
