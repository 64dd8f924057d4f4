#include "cli/ctl.hpp"

#include <csignal>
#include <unistd.h>

#include <fmt/core.h>

#include "cli/completion.hpp"
#include "cli/ctl_format.hpp"
#include "cli/ctl_values.hpp"
#include "cli/manpage.hpp"

namespace bulkhead::ctl {

int report(const std::string &message) {
  fmt::print(stderr, "bulkheadctl: {}\n", message);
  return 1;
}

int report(const Error &e) { return report(e.text()); }

std::unique_ptr<Cli> make_cli() {
  auto cli = std::make_unique<Cli>();
  cli->app =
      std::make_unique<CLI::App>("bulkheadctl: manage the system containers of bulkheadd", "bulkheadctl");
  CLI::App &app = *cli->app;
  // Global flags are accepted after the subcommand too ("bulkheadctl list --socket X").
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.add_option("--socket", cli->context.socket, "bulkheadd's API socket")
      ->envname("BULKHEAD_SOCKET")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_flag("--version", cli->version, "print the version and exit");
  app.add_flag("--generate-man", cli->generate_man, "print the man page (roff)")->group("");
  app.add_flag("--generate-completion", cli->generate_completion, "print the bash completion script")
      ->group("");
  add_container_commands(app, cli->action);
  add_exec_commands(app, cli->action);
  add_template_commands(app, cli->action);
  add_event_commands(app, cli->action);
  add_network_commands(app, cli->action);
  add_port_commands(app, cli->action);
  add_snapshot_commands(app, cli->action);
  add_remote_commands(app, cli->action);
  add_net_attach_commands(app, cli->action);
  add_checkpoint_commands(app, cli->action);
  add_migrate_commands(app, cli->action);
  add_host_commands(app, cli->action);
  add_cluster_commands(app, cli->action);
  add_replica_commands(app, cli->action);
  return cli;
}

std::optional<int> parse(Cli &cli, std::vector<std::string> args) {
  cli.context.init = split_init(args);
  std::reverse(args.begin(), args.end());
  try {
    cli.app->parse(args);
  } catch (const CLI::CallForHelp &e) {
    return cli.app->exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return cli.app->exit(e);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0)
      return cli.app->exit(e);
    // "exec web ls -l": the command's own flags need the "--" before it.
    if (dynamic_cast<const CLI::ExtrasError *>(&e) && cli.app->got_subcommand("exec"))
      return report(std::string(e.what()) + " (give the command after --: exec NAME -- CMD...)");
    return report(e.what());
  }
  if (cli.context.init && !cli.app->got_subcommand("create"))
    return report("--init belongs to create");
  return std::nullopt;
}

namespace {

std::string man_page(const CLI::App &app) {
  cli::ManPageInfo info;
  info.source = "bulkhead " BULKHEAD_VERSION;
  info.manual = "bulkhead manual";
  info.description =
      "bulkheadctl manages the system containers and OS templates of a bulkheadd daemon through its API "
      "socket (see docs/api.md). Output is a table for people; --json prints the API's objects for "
      "scripts.\n\n"
      "Errors are one line on stderr, \"bulkheadctl: <message>\", with exit status 1; exec exits with "
      "the status of the command it ran.";
  info.see_also = "bulkheadd(8), bulkhead(8)";
  return cli::generate_manpage(app, info);
}

std::string completion(const CLI::App &app) {
  cli::CompletionInfo info;
  const std::string containers = "bulkheadctl list -q 2>/dev/null";
  for (const char *cmd : {"start", "stop", "restart", "kill", "destroy", "info", "exec", "console", "logs",
                          "set", "freeze", "unfreeze", "checkpoint", "restore", "migrate", "protect", "unprotect"})
    info.dynamic[std::string(cmd) + ":NAME"] = containers;
  info.dynamic["template rm:NAME"] = "bulkheadctl template list -q 2>/dev/null";
  info.dynamic["create:--template"] = "bulkheadctl template list -q 2>/dev/null";
  info.file_flags = {"--socket", "--init"};
  return cli::generate_bash_completion(app, info);
}

} // namespace

int run(int argc, char **argv, const char *commit) {
  auto cli = make_cli();
  if (auto done = parse(*cli, std::vector<std::string>(argv + 1, argv + argc)))
    return *done;
  if (cli->version) {
    fmt::print("bulkheadctl version {}\ncommit: {}\n", BULKHEAD_VERSION, commit);
    return 0;
  }
  if (cli->generate_man) {
    fmt::print("{}", man_page(*cli->app));
    return 0;
  }
  if (cli->generate_completion) {
    fmt::print("{}", completion(*cli->app));
    return 0;
  }
  if (!cli->action) {
    fmt::print("{}", cli->app->help());
    return 0;
  }
  return cli->action(cli->context);
}

} // namespace bulkhead::ctl

namespace bulkhead::ctl {

bool write_out(std::string_view data) {
  return std::fwrite(data.data(), 1, data.size(), stdout) == data.size() && std::fflush(stdout) == 0;
}

int print_raw_json(const std::string &body) {
  std::string text = body.empty() ? "{}" : body;
  if (text.back() != '\n')
    text += '\n';
  return write_out(text) ? 0 : report("writing to stdout failed");
}

int print_list(Context &ctx, const std::string &path, bool json,
               const std::function<std::string(const nlohmann::json &list)> &render) {
  auto client = ctx.client();
  if (json) {
    auto body = client.get_text(path);
    return body ? print_raw_json(*body) : report(body.error());
  }
  auto list = client.get(path);
  if (!list)
    return report(list.error());
  if (!list->is_array())
    return report("GET " + path + ": bulkheadd answered something other than an array");
  return write_out(render(*list)) ? 0 : 1;
}

namespace {

template <class F> CLI::Validator check_with(F check, const std::string &what) {
  return CLI::Validator(
      [check](std::string &value) -> std::string {
        auto r = check(value);
        return r ? std::string() : r.error().text();
      },
      what);
}

template <class F> CLI::Validator or_none(F check, bool allow_none, const std::string &what) {
  return check_with(
      [check, allow_none](const std::string &v) -> Status {
        if (allow_none && v == "none")
          return {};
        auto r = check(v);
        if (!r)
          return tl::unexpected(r.error());
        return {};
      },
      what);
}

} // namespace

CLI::Validator name_validator() { return check_with(check_name, ""); }
CLI::Validator size_validator(bool allow_none) { return or_none(parse_size, allow_none, ""); }
CLI::Validator cpus_validator(bool allow_none) { return or_none(parse_cpus, allow_none, ""); }
CLI::Validator pids_validator(bool allow_none) { return or_none(parse_pids, allow_none, ""); }
CLI::Validator restart_validator() { return check_with(check_restart, ""); }
CLI::Validator env_validator() { return check_with(check_env, ""); }
CLI::Validator signal_validator() { return check_with(normalize_signal, ""); }

namespace {
volatile std::sig_atomic_t g_interrupted = 0;
int g_armed = 0; // nesting depth of CancelOnInterrupt (bulkheadctl is single-threaded)
struct sigaction g_saved_sigint {};
extern "C" void on_interrupt(int) {
  g_interrupted = 1;
  // A second Ctrl-C ends bulkheadctl at once (the daemon was already asked to cancel).
  ::signal(SIGINT, SIG_DFL);
}
} // namespace

CancelOnInterrupt::CancelOnInterrupt() {
  if (g_armed++ > 0)
    return;
  // SA_RESTART keeps a pending HTTP read going, so the answer (and the operation's id) arrives.
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  g_interrupted = 0;
  ::sigaction(SIGINT, &sa, &g_saved_sigint);
}

CancelOnInterrupt::~CancelOnInterrupt() {
  if (--g_armed == 0)
    ::sigaction(SIGINT, &g_saved_sigint, nullptr);
}

bool CancelOnInterrupt::interrupted() { return g_interrupted != 0; }

Result<nlohmann::json> settle(daemon::ApiClient &client, nlohmann::json answer,
                              const daemon::ApiClient::ProgressFn &on_progress) {
  if (client.last_status() != 202)
    return answer;
  // Ctrl-C while waiting (or since the caller armed it before sending the request) cancels the
  // operation in the daemon, as incus does, rather than leaving it running unseen.
  CancelOnInterrupt armed;
  client.set_cancel_flag(&g_interrupted);
  auto done = client.wait_operation(answer, on_progress);
  client.set_cancel_flag(nullptr);
  if (!done && g_interrupted)
    return fail("interrupted: " + done.error().text());
  return done;
}

nlohmann::json operation_metadata(const nlohmann::json &op) {
  return op.is_object() && op.contains("metadata") && op["metadata"].is_object() ? op["metadata"]
                                                                                 : nlohmann::json::object();
}

Result<nlohmann::json> post_and_wait(Context &ctx, const std::string &verb, const std::string &name,
                                     const std::string &path, const nlohmann::json &request) {
  CancelOnInterrupt armed;
  auto client = ctx.client();
  auto answer = client.post(path, request);
  if (!answer)
    return tl::unexpected(answer.error());
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  size_t drawn = 0;
  auto on_progress = [&](const nlohmann::json &op) {
    if (!tty)
      return;
    std::string line = progress_line(verb, name, op);
    // Pads over the end of a longer earlier line.
    std::string pad(drawn > line.size() ? drawn - line.size() : 0, ' ');
    fmt::print("\r{}{}", line, pad);
    std::fflush(stdout);
    drawn = line.size();
  };
  auto done = settle(client, std::move(*answer), on_progress);
  if (tty && drawn)
    fmt::print("\r{}\r", std::string(drawn, ' '));
  return done;
}

int change_state(Context &ctx, const std::string &name, nlohmann::json request) {
  CancelOnInterrupt armed;
  auto client = ctx.client();
  auto answer = client.put(daemon::api_path("/1.0/containers/", name, "/state"), request);
  if (!answer)
    return report(answer.error());
  if (auto done = settle(client, std::move(*answer)); !done)
    return report(done.error());
  return 0;
}

} // namespace bulkhead::ctl
