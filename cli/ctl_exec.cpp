// exec and console: their flags, and what they share (the monitor socket lookup, detach keys).
// The sessions themselves are in ctl_exec_run.cpp.
#include "cli/ctl_exec.hpp"

#include "cli/ctl_values.hpp"

namespace bulkhead::ctl {

Result<std::string> monitor_socket(Context &ctx, const std::string &name) {
  auto client = ctx.client();
  auto answer = BH_TRY(client.get(daemon::api_path("/1.0/containers/", name, "/console")));
  if (!answer.is_object() || !answer.contains("socket") || !answer["socket"].is_string() ||
      answer["socket"].get<std::string>().empty())
    return fail("GET /1.0/containers/" + name + "/console: bulkheadd answered no \"socket\"");
  return answer["socket"].get<std::string>();
}

std::string DetachFilter::feed(const char *data, size_t len, bool &detach) {
  static constexpr char kCtrlBracket = 0x1d;
  std::string out;
  detach = false;
  for (size_t i = 0; i < len; i++) {
    char c = data[i];
    if (escape_) {
      escape_ = false;
      if (c == 'q' || c == 'Q') {
        detach = true;
        return out;
      }
      out += kCtrlBracket;
      if (c != kCtrlBracket)
        out += c;
    } else if (c == kCtrlBracket) {
      escape_ = true;
    } else {
      out += c;
    }
  }
  return out;
}

void add_exec_commands(CLI::App &app, Action &chosen) {
  struct ExecArgs {
    std::string name;
    daemon::ExecRequest request;
  };
  auto a = std::make_shared<ExecArgs>();
  auto *c = app.add_subcommand("exec", "run a command in a running container; exits with its status");
  c->add_option("NAME", a->name, "the container")->required()->check(name_validator());
  c->add_option("COMMAND", a->request.args, "the command and its arguments, after --")->required();
  c->add_flag("-t,--tty", a->request.tty, "run it on a new terminal, relayed to this one");
  c->add_option("-u,--user", a->request.user, "uid[:gid] or a user name in the container (default root)")
      ->type_name("U");
  c->add_option("-e,--env", a->request.env, "environment variable, repeatable")
      ->type_name("K=V")
      ->check(env_validator());
  c->add_option("-w,--cwd", a->request.cwd, "working directory in the container (default /)")->type_name("D");
  c->callback([a, &chosen] { chosen = [a](Context &ctx) { return run_exec(ctx, a->name, a->request); }; });

  auto name = std::make_shared<std::string>();
  auto *console = app.add_subcommand("console", "attach to a container's console; detach with Ctrl-] then q");
  console->add_option("NAME", *name, "the container")->required()->check(name_validator());
  console->callback([name, &chosen] { chosen = [name](Context &ctx) { return run_console(ctx, *name); }; });
}

} // namespace bulkhead::ctl
