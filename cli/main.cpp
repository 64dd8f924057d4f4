// bulkhead: the OCI runtime binary. Parses runc's command line and calls libbulkhead.
#include <CLI/CLI.hpp>
#include <algorithm>

#include "bulkhead/runtime.hpp"
#include "cli/argv.hpp"
#include "cli/cgroup_commands.hpp"
#include "cli/commands.hpp"
#include "cli/completion.hpp"
#include "cli/logger.hpp"
#include "cli/manpage.hpp"
#include "oci/state.hpp"
#include "security/seccomp.hpp"

namespace {

std::set<std::string> long_option_names(const CLI::App &app) {
  std::set<std::string> names;
  for (const CLI::Option *o : app.get_options())
    for (const auto &n : o->get_lnames())
      names.insert(n);
  for (const CLI::App *sub : app.get_subcommands([](const CLI::App *) { return true; })) {
    auto more = long_option_names(*sub);
    names.insert(more.begin(), more.end());
  }
  return names;
}

// "--root", "-p", ...: the flags whose value is the next word.
std::set<std::string> value_flag_names(const CLI::App &app) {
  std::set<std::string> names;
  for (const CLI::Option *o : app.get_options()) {
    if (o->get_items_expected_min() == 0 || o->get_positional())
      continue;
    for (const auto &n : o->get_lnames())
      names.insert("--" + n);
    for (const auto &n : o->get_snames())
      names.insert("-" + n);
  }
  for (const CLI::App *sub : app.get_subcommands([](const CLI::App *) { return true; })) {
    auto more = value_flag_names(*sub);
    names.insert(more.begin(), more.end());
  }
  return names;
}

// The man page and bash completion, generated from the full command tree (hidden --generate-man and
// --generate-completion, as bulkheadctl's and bulkheadd's).
std::string man_page(const CLI::App &app) {
  bulkhead::cli::ManPageInfo info;
  info.section = "8";
  info.source = "bulkhead " BULKHEAD_VERSION;
  info.manual = "bulkhead manual";
  info.description =
      "bulkhead is an OCI container runtime with runc's command line: it creates and runs containers from "
      "an OCI bundle (a config.json and a root filesystem), as containerd, CRI-O, Docker and Podman "
      "expect of runc.\n\n"
      "Global flags come before the command. Errors go to stderr (or to --log) and the exit status is "
      "non-zero; run and exec exit with the status of the container's process.";
  info.see_also = "bulkheadd(8), bulkheadctl(1), runc(8)";
  return bulkhead::cli::generate_manpage(app, info);
}

std::string completion(const CLI::App &app) {
  bulkhead::cli::CompletionInfo info;
  const std::string containers = "bulkhead list -q 2>/dev/null";
  for (const char *cmd : {"start", "state", "kill", "delete", "exec", "pause", "resume", "update", "ps",
                          "events", "checkpoint"})
    info.dynamic[std::string(cmd) + ":id"] = containers;
  info.file_flags = {"--root",    "--log",       "--bundle",     "--pid-file", "--console-socket",
                     "--process", "--resources", "--image-path", "--work-path"};
  info.inherit_flags = false; // as runc: global flags before the command only
  return bulkhead::cli::generate_bash_completion(app, info);
}

} // namespace

int main(int argc, char **argv) {
  using namespace bulkhead;
  CLI::App app{"bulkhead: an OCI container runtime (runc-compatible)", "bulkhead"};
  std::string root = default_state_root(), log_path, log_format = "text";
  bool debug = false, systemd_cgroup = false, version = false, generate_man = false,
       generate_completion = false;
  app.add_option("--root", root, "state directory");
  app.add_option("--log", log_path, "log file");
  app.add_option("--log-format", log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", debug, "debug logging");
  app.add_flag(
      "--systemd-cgroup", systemd_cgroup,
      "use the systemd cgroup driver: the container's cgroup is a transient scope, linux.cgroupsPath "
      "is \"slice:prefix:name\" (default system.slice:bulkhead:ID)");
  app.add_flag("-v,--version", version, "print the version");
  app.add_flag("--generate-man", generate_man, "print the man page (roff)")->group("");
  app.add_flag("--generate-completion", generate_completion, "print the bash completion script")->group("");
  app.require_subcommand(0, 1);
  std::vector<std::string> args(argv + 1, argv + argc);
  // Building CLI11's whole tree costs more than most commands themselves (bench/README.md), so
  // only the chosen subcommand is built. Anything else (no subcommand, --help, an unknown word)
  // gets the full tree, and with it the same help and errors as before.
  static const std::set<std::string> global_value_flags = {"--root", "--log", "--log-format"};
  std::string word = cli::subcommand_word(args, global_value_flags);
  cli::Commands commands;
  cli::CgroupCommands cgroup_commands;
  if (!word.empty()) {
    commands.add_to(app, word);
    cgroup_commands.add_to(app, word);
  }
  bool unknown_word = !word.empty() && app.get_subcommands([](const CLI::App *) { return true; }).empty();
  if (app.get_subcommands([](const CLI::App *) { return true; }).empty()) {
    commands.add_to(app);
    cgroup_commands.add_to(app);
  }
  if (word == "help") { // runc's `help` command
    fmt::print("{}", app.help());
    return 0;
  }
  // An unknown command is an error even when a help flag follows it: `bulkhead foo -h` printing
  // the help and exiting 0 would tell a script that `foo` exists.
  if (unknown_word) {
    fmt::print(stderr, "bulkhead: unknown command {:?} (bulkhead --help lists the commands)\n", word);
    return 1;
  }

  args = cli::normalize_single_dash(args, long_option_names(app));
  commands.exec_opts.args = cli::split_exec_command(args, value_flag_names(app));
  cgroup_commands.ps_args = cli::split_ps_args(args, value_flag_names(app));
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  if (version) {
    fmt::print("bulkhead version {}\ncommit: {}\nspec: {}\nlibseccomp: {}\n", BULKHEAD_VERSION,
               BULKHEAD_COMMIT, oci::kSpecVersion, security::libseccomp_version());
    return 0;
  }
  if (generate_man || generate_completion) {
    fmt::print("{}", generate_man ? man_page(app) : completion(app));
    return 0;
  }
  cli::Logger logger;
  if (auto opened = logger.open(log_path, log_format, debug); !opened) {
    logger.error(opened.error().text());
    return 1;
  }
  if (app.get_subcommands().empty()) {
    fmt::print("{}", app.help());
    return 0;
  }
  if (debug) {
    std::string line;
    for (int i = 0; i < argc; ++i)
      line += fmt::format("{}{:?}", i ? " " : "", argv[i]);
    logger.log(LogLevel::Debug,
               fmt::format("bulkhead {} (commit {}): {}", BULKHEAD_VERSION, BULKHEAD_COMMIT, line));
  }
  RuntimeOptions opts;
  opts.root = root;
  opts.systemd_cgroup = systemd_cgroup;
  opts.log = [&logger](LogLevel l, const std::string &m) { logger.log(l, m); };
  Runtime rt(opts);
  if (auto code = cgroup_commands.dispatch(rt, logger))
    return *code;
  return commands.dispatch(rt, logger);
}
