// snapshot create|list|restore|rm, export, import: snapshots and backups of containers
// (docs/snapshots.md).
#include <fmt/core.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <ctime>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

// The daemon resolves paths on its own host with its own working directory: send absolute ones.
std::string absolute(const std::string &path) {
  if (!path.empty() && path[0] == '/')
    return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr)
    return path;
  return std::string(cwd) + "/" + path;
}

std::string rate(uint64_t bytes, double seconds) {
  return seconds > 0 ? human_size(static_cast<uint64_t>(static_cast<double>(bytes) / seconds)) + "/s" : "-";
}

void add_snapshot_create(CLI::App &grp, Action &chosen) {
  struct Args {
    std::string name, snap;
  };
  auto a = std::make_shared<Args>();
  auto *c =
      grp.add_subcommand("create", "snapshot a container's files (a running one is frozen for the copy)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("SNAP", a->snap, "the snapshot's name")->required()->check(name_validator());
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto op =
          post_and_wait(ctx, "snapshotting", a->name,
                        daemon::api_path("/1.0/containers/", a->name, "/snapshots"), {{"name", a->snap}});
      if (!op)
        return report(op.error());
      auto m = operation_metadata(*op);
      fmt::print("snapshot {} of {}: {}, {} files ({})\n", a->snap, a->name,
                 human_size(m.value("size_bytes", uint64_t{0})), m.value("files", uint64_t{0}),
                 m.value("container_state", std::string("?")));
      return 0;
    };
  });
}

void add_snapshot_list(CLI::App &grp, Action &chosen) {
  struct Args {
    std::string name;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = grp.add_subcommand("list", "list a container's snapshots");
  c->alias("ls");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_flag("--json", a->json, "print the API's Snapshot objects");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      std::string path = daemon::api_path("/1.0/containers/", a->name, "/snapshots");
      return print_list(ctx, path, a->json, [](const nlohmann::json &list) {
        std::vector<std::vector<std::string>> rows;
        for (const auto &s : list) {
          rows.push_back({s.value("name", ""), local_time(s.value("created_at", int64_t{0})),
                          s.value("container_state", ""), human_size(s.value("size_bytes", uint64_t{0})),
                          std::to_string(s.value("files", uint64_t{0}))});
        }
        return render_table({"NAME", "CREATED", "TAKEN", "SIZE", "FILES"}, rows);
      });
    };
  });
}

void add_snapshot_restore(CLI::App &grp, Action &chosen) {
  struct Args {
    std::string name, snap;
  };
  auto a = std::make_shared<Args>();
  auto *c = grp.add_subcommand("restore", "put a container's files back as a snapshot has them (a running "
                                          "container is stopped, restored and started)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("SNAP", a->snap, "the snapshot")->required()->check(name_validator());
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto op =
          post_and_wait(ctx, "restoring", a->name,
                        daemon::api_path("/1.0/containers/", a->name, "/snapshots/" + a->snap + "/restore"),
                        json::object());
      if (!op)
        return report(op.error());
      fmt::print("restored {} to snapshot {}{}\n", a->name, a->snap,
                 operation_metadata(*op).value("restarted", false) ? " (stopped and started again)" : "");
      return 0;
    };
  });
}

void add_snapshot_rm(CLI::App &grp, Action &chosen) {
  struct Args {
    std::string name, snap;
  };
  auto a = std::make_shared<Args>();
  auto *c = grp.add_subcommand("rm", "remove a snapshot");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("SNAP", a->snap, "the snapshot")->required()->check(name_validator());
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      auto client = ctx.client();
      auto answer = client.del(daemon::api_path("/1.0/containers/", a->name, "/snapshots/" + a->snap));
      return answer ? 0 : report(answer.error());
    };
  });
}

void add_export(CLI::App &app, Action &chosen) {
  struct Args {
    std::string name, file, base, snap;
    bool with_template = false;
  };
  auto a = std::make_shared<Args>();
  auto *c =
      app.add_subcommand("export", "write a container's backup archive (record, files, template reference)");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option(
       "FILE", a->file,
       "the archive to create on the daemon's host (.tar, .tar.gz, .tar.xz, .tar.zst); never overwritten")
      ->required();
  c->add_option("--incremental-from", a->base,
                "only what changed since this snapshot, plus a list of deletions")
      ->type_name("SNAP")
      ->check(name_validator());
  c->add_option("--snapshot", a->snap,
                "export this snapshot instead of the current files (an import recreates it)")
      ->type_name("SNAP")
      ->check(name_validator());
  c->add_flag("--with-template", a->with_template,
              "carry the template's files too, not only its name and digest");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"file", absolute(a->file)}};
      if (!a->base.empty())
        req["incremental_from"] = a->base;
      if (!a->snap.empty())
        req["snapshot"] = a->snap;
      if (a->with_template)
        req["with_template"] = true;
      auto op = post_and_wait(ctx, "exporting", a->name,
                              daemon::api_path("/1.0/containers/", a->name, "/export"), req);
      if (!op)
        return report(op.error());
      auto m = operation_metadata(*op);
      uint64_t data = m.value("data_bytes", uint64_t{0});
      double secs = m.value("seconds", 0.0);
      fmt::print("exported {} ({}) to {}: {} entries, {} of data, {} archive, {:.2f} s, {}\n", a->name,
                 m.value("kind", std::string("full")), req["file"].get<std::string>(),
                 m.value("entries", uint64_t{0}), human_size(data),
                 human_size(m.value("archive_bytes", uint64_t{0})), secs, rate(data, secs));
      return 0;
    };
  });
}

void add_import(CLI::App &app, Action &chosen) {
  struct Args {
    std::string file, name;
  };
  auto a = std::make_shared<Args>();
  auto *c =
      app.add_subcommand("import", "make a container from a backup archive, or apply an incremental one");
  c->add_option("FILE", a->file, "the archive, on the daemon's host")->required();
  c->add_option("NEWNAME", a->name, "the container's name (default: the exported one's)")
      ->check(name_validator());
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"file", absolute(a->file)}};
      if (!a->name.empty())
        req["name"] = a->name;
      auto op = post_and_wait(ctx, "importing", a->name.empty() ? a->file : a->name, "/1.0/imports", req);
      if (!op)
        return report(op.error());
      auto m = operation_metadata(*op);
      uint64_t bytes = m.value("archive_bytes", uint64_t{0});
      double secs = m.value("seconds", 0.0);
      fmt::print("imported {} from {}: {}, {:.2f} s, {}\n", m.value("name", a->name),
                 req["file"].get<std::string>(), human_size(bytes), secs, rate(bytes, secs));
      if (m.contains("dropped_networks") && m["dropped_networks"].is_array() &&
          !m["dropped_networks"].empty())
        fmt::print("dropped NICs on networks missing here: {}\n", m["dropped_networks"].dump());
      return 0;
    };
  });
}

} // namespace

void add_snapshot_commands(CLI::App &app, Action &chosen) {
  auto *grp = app.add_subcommand("snapshot", "manage container snapshots");
  grp->require_subcommand(1);
  add_snapshot_create(*grp, chosen);
  add_snapshot_list(*grp, chosen);
  add_snapshot_restore(*grp, chosen);
  add_snapshot_rm(*grp, chosen);
  add_export(app, chosen);
  add_import(app, chosen);
}

} // namespace bulkhead::ctl
