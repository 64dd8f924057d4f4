// bulkheadctl: the command-line client of bulkheadd (docs/bulkheadctl.md). The command tree is
// built here and in cli/ctl_*.cpp (one file per group); each subcommand's callback records the
// action to run, which runs after parsing, with the client for the chosen socket.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api_client.hpp"

namespace bulkhead::ctl {

struct Context {
  std::string socket = daemon::kDefaultSocket;
  // Words after `create ... --init` (split off before parsing: they may look like flags).
  std::optional<std::vector<std::string>> init;
  daemon::ApiClient client() const { return daemon::ApiClient(socket); }
};

// A parsed command, ready to run: returns the exit status.
using Action = std::function<int(Context &)>;

struct Cli {
  std::unique_ptr<CLI::App> app;
  Context context;
  Action action;
  bool version = false, generate_man = false, generate_completion = false;
};

// The whole command tree. The Cli must not move while the app lives (callbacks point into it).
std::unique_ptr<Cli> make_cli();

// Parses args (without argv[0]) into cli. Returns an exit status when the run ends here (help,
// a parse error already printed as "bulkheadctl: ..."), nothing when cli.action is set.
std::optional<int> parse(Cli &cli, std::vector<std::string> args);

// The whole program: parse, then run the action.
int run(int argc, char **argv, const char *commit);

// "bulkheadctl: <message>" on stderr; returns 1.
int report(const std::string &message);
int report(const Error &e);

// The command groups (cli/ctl_containers.cpp, ctl_exec.cpp, ctl_templates.cpp, ctl_events.cpp).
void add_container_commands(CLI::App &app, Action &chosen);
void add_exec_commands(CLI::App &app, Action &chosen);
void add_template_commands(CLI::App &app, Action &chosen);
void add_event_commands(CLI::App &app, Action &chosen);
void add_network_commands(CLI::App &app, Action &chosen);
void add_port_commands(CLI::App &app, Action &chosen);
void add_snapshot_commands(CLI::App &app, Action &chosen);   // snapshot ..., export, import
void add_remote_commands(CLI::App &app, Action &chosen);     // trust ..., remote ...
void add_net_attach_commands(CLI::App &app, Action &chosen); // net attach|detach (ctl_net_attach.cpp)
void add_checkpoint_commands(CLI::App &app, Action &chosen); // checkpoint, restore (ctl_checkpoint.cpp)
void add_migrate_commands(CLI::App &app, Action &chosen);    // migrate (ctl_migrate.cpp)
void add_host_commands(CLI::App &app, Action &chosen);       // host info|evacuate (ctl_host.cpp)
void add_cluster_commands(CLI::App &app, Action &chosen);
// The flags a host-wide move takes (host evacuate, cluster rebalance): --parallel N, --cold|--live;
// move_request() is the API's request from them.
struct MoveFlags {
  int parallel = 1;
  bool cold = false, live = false, dry_run = false, json = false;
};
void add_move_flags(CLI::App *command, MoveFlags &flags);
nlohmann::json move_request(const MoveFlags &flags);
// Starts a host-wide move (POST path: an evacuation or a rebalance), shows its progress as
// "LABEL: STAGE (N of M done)" on a terminal, then one row per container, also when it failed
// (ctl_host.cpp); the exit status is the operation's.
int run_host_moves(Context &ctx, const std::string &path, const nlohmann::json &req, const std::string &label,
                   bool as_json);
void add_replica_commands(
    CLI::App &app,
    Action &chosen); // protect, unprotect, replica (ctl_replica.cpp)    // cluster list (ctl_cluster.cpp)

// NETWORK[:ipv4=A][,ipv6=B][,ingress=RATE][,egress=RATE] (create --net, net attach) as the API's
// NIC request; errors start with `what` and the text.
Result<nlohmann::json> parse_net(const std::string &text, const std::string &what);

} // namespace bulkhead::ctl

namespace bulkhead::ctl {

// Writes bytes to stdout as they are; false when stdout is gone (a closed pipe).
bool write_out(std::string_view data);
// A JSON answer printed for scripts: the API's text unchanged, ending in a newline.
int print_raw_json(const std::string &body);
// A list command: with `json` the daemon's answer to GET path is printed as it is; otherwise
// `render` turns the array it answered into the text printed (an answer that is not an array
// is an error naming the path).
int print_list(Context &ctx, const std::string &path, bool json,
               const std::function<std::string(const nlohmann::json &list)> &render);
// CLI11 checks built on the ctl_values functions (their message is the error's text).
CLI::Validator name_validator();
CLI::Validator size_validator(bool allow_none);
CLI::Validator cpus_validator(bool allow_none);
CLI::Validator pids_validator(bool allow_none);
CLI::Validator restart_validator();
CLI::Validator env_validator();
CLI::Validator signal_validator();

// POSTs `request` to `path` and waits for its operation (Ctrl-C cancels it), with a redrawn
// progress line "VERB NAME: ..." on a terminal; returns the finished Operation.
Result<nlohmann::json> post_and_wait(Context &ctx, const std::string &verb, const std::string &name,
                                     const std::string &path, const nlohmann::json &request);
// A finished Operation's "metadata" object ({} when it has none).
nlohmann::json operation_metadata(const nlohmann::json &op);
// A PUT /1.0/containers/NAME/state and the wait for its operation; 0 or an error reported.
int change_state(Context &ctx, const std::string &name, nlohmann::json request);
// Armed before a request that may start an operation (a 202) is sent, so a Ctrl-C that lands
// before the answer arrives still cancels that operation (settle sends the cancel) instead of
// killing bulkheadctl with the work left running in the daemon. Restores SIGINT when it ends.
class CancelOnInterrupt {
public:
  CancelOnInterrupt();
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt &) = delete;
  CancelOnInterrupt &operator=(const CancelOnInterrupt &) = delete;
  static bool interrupted();
};
// Waits when `answer` (of the last request) is a 202 Operation; otherwise returns it unchanged.
Result<nlohmann::json> settle(daemon::ApiClient &client, nlohmann::json answer,
                              const daemon::ApiClient::ProgressFn &on_progress = {});

} // namespace bulkhead::ctl
