// template import|create|list|rm: the shared OS templates containers are built from.
#include <fmt/core.h>
#include <unistd.h>

#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

namespace {

using nlohmann::json;

// Waits for a template operation: a redrawn progress line on a terminal, a plain last line always.
int wait_template(Context &ctx, const std::string &verb, const std::string &name, const json &request) {
  auto done = post_and_wait(ctx, verb, name, "/1.0/templates", request);
  if (!done)
    return report(done.error());
  auto client = ctx.client();
  auto tpl = client.get(daemon::api_path("/1.0/templates/", name));
  if (tpl && tpl->is_object() && tpl->contains("size_bytes") && (*tpl)["size_bytes"].is_number())
    fmt::print("{} template {}: {}, {} files\n", verb == "importing" ? "imported" : "created", name,
               human_size((*tpl)["size_bytes"].get<uint64_t>()), tpl->value("files", uint64_t{0}));
  else
    fmt::print("{} template {}\n", verb == "importing" ? "imported" : "created", name);
  return 0;
}

void add_import(CLI::App &tpl, Action &chosen) {
  struct Args {
    std::string name, source;
  };
  auto a = std::make_shared<Args>();
  auto *c = tpl.add_subcommand("import", "import a template from a root filesystem tarball or directory");
  c->add_option("NAME", a->name, "the template's name")->required()->check(name_validator());
  c->add_option("SOURCE", a->source,
                "a tarball (.tar, .tar.gz, .tar.xz, .tar.zst) or a directory, on the daemon's host")
      ->required();
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      return wait_template(ctx, "importing", a->name, {{"name", a->name}, {"source", a->source}});
    };
  });
}

void add_create(CLI::App &tpl, Action &chosen) {
  struct Args {
    std::string name, suite, mirror;
  };
  auto a = std::make_shared<Args>();
  auto *c = tpl.add_subcommand("create", "build a Debian template with debootstrap");
  c->add_option("NAME", a->name, "the template's name")->required()->check(name_validator());
  c->add_option("--debootstrap", a->suite, "the Debian suite, e.g. bookworm")->type_name("SUITE")->required();
  c->add_option("--mirror", a->mirror, "the Debian mirror to use")->type_name("URL");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      json req = {{"name", a->name}, {"debootstrap", a->suite}};
      if (!a->mirror.empty())
        req["mirror"] = a->mirror;
      return wait_template(ctx, "creating", a->name, req);
    };
  });
}

void add_list(CLI::App &tpl, Action &chosen) {
  struct Args {
    bool json = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto *c = tpl.add_subcommand("list", "list the templates");
  c->alias("ls");
  c->add_flag("--json", a->json, "print the API's Template objects");
  c->add_flag("-q,--quiet", a->quiet, "print the names only");
  c->callback([a, &chosen] {
    chosen = [a](Context &ctx) {
      return print_list(ctx, "/1.0/templates", a->json, [a](const nlohmann::json &list) {
        if (!a->quiet)
          return template_table(list);
        std::string out;
        for (const auto &t : list)
          if (t.contains("name") && t["name"].is_string())
            out += t["name"].get<std::string>() + "\n";
        return out;
      });
    };
  });
}

void add_rm(CLI::App &tpl, Action &chosen) {
  auto name = std::make_shared<std::string>();
  auto *c = tpl.add_subcommand("rm", "remove a template no container uses");
  c->add_option("NAME", *name, "the template")->required()->check(name_validator());
  c->callback([name, &chosen] {
    chosen = [name](Context &ctx) {
      auto client = ctx.client();
      auto answer = client.del(daemon::api_path("/1.0/templates/", *name));
      return answer ? 0 : report(answer.error());
    };
  });
}

} // namespace

void add_template_commands(CLI::App &app, Action &chosen) {
  auto *tpl = app.add_subcommand("template", "manage OS templates");
  tpl->require_subcommand(1);
  add_import(*tpl, chosen);
  add_create(*tpl, chosen);
  add_list(*tpl, chosen);
  add_rm(*tpl, chosen);
}

} // namespace bulkhead::ctl
