#include "cli/commands.hpp"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "cli/passwd.hpp"
#include "oci/default_spec.hpp"

namespace bulkhead::cli {

namespace {

void add_create_flags(CLI::App *c, CreateOptions &o) {
  c->add_option("-b,--bundle", o.bundle, "path to the bundle directory");
  c->add_option("--pid-file", o.pid_file, "file to write the host pid of init to");
  c->add_option("--console-socket", o.console_socket, "unix socket that receives the pty master");
  c->add_flag("--no-pivot", o.no_pivot, "use MS_MOVE + chroot instead of pivot_root");
  c->add_flag("--no-new-keyring", o.no_new_keyring, "keep the caller's session keyring");
  c->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1) to the container");
  c->add_option("--pidfd-socket", o.pidfd_socket, "unix socket that receives a pidfd of init");
}

// systemd socket activation of the runtime itself: LISTEN_FDS counts for us only when LISTEN_PID
// names this process (sd_listen_fds semantics); those fds are handed on to the container.
int socket_activation_fds() {
  const char *fds = std::getenv("LISTEN_FDS");
  const char *pid = std::getenv("LISTEN_PID");
  if (!fds || !pid)
    return 0;
  char *end = nullptr;
  long n = std::strtol(fds, &end, 10);
  if (*fds == '\0' || *end != '\0' || n <= 0 || n > 1024)
    return 0;
  long listen_pid = std::strtol(pid, &end, 10);
  if (*end != '\0' || listen_pid != ::getpid())
    return 0;
  return static_cast<int>(n);
}

// Only the chosen subcommand is built (main.cpp), so the others are null.
bool chosen(const CLI::App *sub) { return sub && sub->parsed(); }

constexpr int kExecFailed = 255;

int report(const Logger &log, const Error &e) {
  log.error(e.text());
  return 1;
}

std::string owner_name(const std::string &root, const std::string &id) {
  struct stat st {};
  if (::stat((root + "/" + id).c_str(), &st) < 0)
    return "";
  return user_name(st.st_uid).value_or(std::to_string(st.st_uid));
}

int print_list(Runtime &rt, const Logger &log, const std::string &format, bool quiet) {
  auto states = rt.list();
  if (!states)
    return report(log, states.error());
  if (quiet) {
    for (const auto &s : *states)
      fmt::print("{}\n", s.id);
    return 0;
  }
  if (format == "json") {
    // Each object as `state` writes it (runc's key order), owner named as in the table.
    std::string out = "[";
    for (const auto &s : *states) {
      oci::State named = s;
      named.owner = owner_name(rt.options().root, s.id);
      out += (out.size() > 1 ? "," : "") + oci::state_to_json(named, false);
    }
    fmt::print("{}]\n", out);
    return 0;
  }
  fmt::print("{:<12} {:<10} {:<10} {:<40} {:<32} {}\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (const auto &s : *states)
    fmt::print("{:<12} {:<10} {:<10} {:<40} {:<32} {}\n", s.id, s.pid, s.status, s.bundle, s.created,
               owner_name(rt.options().root, s.id));
  return 0;
}

int write_spec(const Logger &log, const std::string &bundle, bool rootless) {
  std::string path = bundle + "/config.json";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    if (errno == EEXIST)
      return report(log, Error{0, fmt::format("File {} exists. Remove it first", path)});
    return report(log, Error{errno, "writing " + path});
  }
  auto written = write_all(fd.get(), oci::default_spec_json(rootless) + "\n", path);
  if (!written)
    return report(log, written.error());
  return 0;
}

} // namespace

void Commands::add_to(CLI::App &app, std::string_view only) {
  auto want = [only](std::string_view name) { return only.empty() || only == name; };
  if (want("create")) {
    create = app.add_subcommand("create", "create a container (init waits for start)");
    add_create_flags(create, create_opts);
    create->add_option("id", id, "container id")->required();
  }

  if (want("run")) {
    run = app.add_subcommand("run", "create and start a container");
    add_create_flags(run, create_opts);
    run->add_flag("-d,--detach", run_opts.detach, "detach from the container's process");
    run->add_flag("--no-subreaper", run_opts.no_subreaper, "do not become a subreaper");
    run->add_flag("--keep", run_opts.keep, "do not delete the container after it exits");
    run->add_option("id", id, "container id")->required();
  }

  if (want("start")) {
    start = app.add_subcommand("start", "run the user process of a created container");
    start->add_option("id", id, "container id")->required();
  }

  if (want("state")) {
    state = app.add_subcommand("state", "print the state of a container as JSON");
    state->add_option("id", id, "container id")->required();
  }

  if (want("kill")) {
    kill = app.add_subcommand("kill", "send a signal to the container's init (or all its processes)");
    kill->add_flag("-a,--all", all, "signal every process of the container");
    kill->add_option("id", id, "container id")->required();
    kill->add_option("signal", signal, "signal name or number (default SIGTERM)");
  }

  if (want("delete")) {
    del = app.add_subcommand("delete", "delete a container and everything it holds");
    del->add_flag("-f,--force", force, "kill a running container first");
    del->add_option("id", id, "container id")->required();
  }

  if (want("exec")) {
    exec =
        app.add_subcommand("exec", "run a process in a running container: exec [flags] ID COMMAND [ARGS...]");
    exec->add_option("-p,--process", exec_opts.process_file, "process JSON file");
    exec->add_flag("-t,--tty", exec_opts.tty, "allocate a pseudo-terminal");
    exec->add_option("--cwd", exec_opts.cwd, "working directory");
    exec->add_option("-e,--env", exec_opts.env, "KEY=VALUE (repeatable)");
    exec->add_option("-u,--user", exec_opts.user, "uid[:gid]");
    exec->add_option("-g,--additional-gids", exec_opts.additional_gids, "additional gid (repeatable)");
    exec->add_option("-c,--cap", exec_opts.caps, "add a capability (repeatable)");
    exec->add_flag("--no-new-privs", exec_opts.no_new_privs, "set no_new_privs");
    exec->add_option("--apparmor", exec_opts.apparmor, "AppArmor profile");
    exec->add_option("--process-label", exec_opts.process_label, "SELinux label");
    exec->add_flag("-d,--detach", exec_opts.detach, "do not wait for the process");
    exec->add_option("--pid-file", exec_opts.pid_file, "file to write the process's host pid to");
    exec->add_option("--console-socket", exec_opts.console_socket,
                     "unix socket that receives the pty master");
    exec->add_option("--pidfd-socket", exec_opts.pidfd_socket,
                     "unix socket that receives a pidfd of the process");
    exec->add_option("--preserve-fds", exec_opts.preserve_fds, "pass N extra fds to the process");
    exec->add_flag("--ignore-paused", exec_opts.ignore_paused, "exec even into a paused container");
    exec->add_option("--cgroup", exec_opts.sub_cgroups,
                     "[CONTROLLER:]PATH: run in this existing sub-cgroup of the container");
    exec->add_option("id", id, "container id")->required();
  }

  if (want("checkpoint")) {
    auto &o = checkpoint_opts;
    checkpoint = app.add_subcommand("checkpoint", "checkpoint a running container with CRIU");
    checkpoint->add_option("--image-path", o.image_path,
                           "directory for the CRIU images (default ./checkpoint)");
    checkpoint->add_option("--work-path", o.work_path, "directory for CRIU's log and work files");
    checkpoint->add_option("--parent-path", o.parent_path, "previous pre-dump, relative to --image-path");
    checkpoint->add_flag("--leave-running", o.leave_running, "leave the process running after checkpointing");
    checkpoint->add_flag("--tcp-established", o.tcp_established, "allow open TCP connections");
    checkpoint->add_flag("--ext-unix-sk", o.ext_unix_sk, "allow external unix sockets");
    checkpoint->add_flag("--shell-job", o.shell_job, "allow shell jobs (a controlling terminal outside)");
    checkpoint->add_flag("--lazy-pages", o.lazy_pages, "use userfaultfd to lazily restore memory pages");
    checkpoint->add_option("--status-fd", o.status_fd, "fd that gets a NUL byte once lazy-pages is ready");
    checkpoint->add_option("--page-server", o.page_server, "ADDRESS:PORT of a CRIU page server");
    checkpoint->add_flag("--file-locks", o.file_locks, "handle file locks");
    checkpoint->add_flag("--pre-dump", o.pre_dump, "dump memory only, leave the container running");
    checkpoint->add_option("--manage-cgroups-mode", o.manage_cgroups_mode,
                           "soft (default), full, strict or ignore");
    checkpoint->add_option("--empty-ns", o.empty_ns,
                           "create this namespace, but do not restore its contents (network)");
    checkpoint->add_flag("--auto-dedup", o.auto_dedup, "deduplicate pages against the parent images");
    checkpoint->add_option("id", id, "container id")->required();
  }

  if (want("restore")) {
    auto &o = restore_opts;
    restore = app.add_subcommand("restore", "restore a container from a CRIU checkpoint");
    restore->add_option("--image-path", o.image_path, "directory of the CRIU images (default ./checkpoint)");
    restore->add_option("--work-path", o.work_path, "directory for CRIU's log and work files");
    restore->add_option("-b,--bundle", o.bundle, "path to the bundle directory");
    restore->add_flag("-d,--detach", o.detach, "detach from the container's process");
    restore->add_option("--pid-file", o.pid_file, "file to write the host pid of init to");
    restore->add_option("--console-socket", o.console_socket, "unix socket that receives the pty master");
    restore->add_flag("--no-subreaper", o.no_subreaper, "do not become a subreaper");
    restore->add_flag("--no-pivot", o.no_pivot, "accepted for runc compatibility (CRIU builds the mounts)");
    restore->add_flag("--tcp-established", o.tcp_established, "allow open TCP connections");
    restore->add_flag("--ext-unix-sk", o.ext_unix_sk, "allow external unix sockets");
    restore->add_flag("--shell-job", o.shell_job, "allow shell jobs");
    restore->add_flag("--file-locks", o.file_locks, "handle file locks");
    restore->add_option("--manage-cgroups-mode", o.manage_cgroups_mode,
                        "soft (default), full, strict or ignore");
    restore->add_option("--empty-ns", o.empty_ns,
                        "create this namespace, but do not restore its contents (network)");
    restore->add_flag("--auto-dedup", o.auto_dedup, "deduplicate pages");
    restore->add_flag("--lazy-pages", o.lazy_pages, "use userfaultfd to lazily restore memory pages");
    restore->add_option("id", id, "container id")->required();
  }

  if (want("list") || want("ls")) {
    list = app.add_subcommand("list", "list containers");
    list->alias("ls");
    list->add_option("-f,--format", list_format, "table or json")->check(CLI::IsMember({"table", "json"}));
    list->add_flag("-q,--quiet", quiet, "print only ids");
  }

  if (want("features")) {
    features = app.add_subcommand("features", "print the features this build supports (JSON)");
  }

  if (want("spec")) {
    spec = app.add_subcommand("spec", "write a default config.json");
    spec->add_option("-b,--bundle", spec_bundle, "directory to write config.json to");
    spec->add_flag("--rootless", rootless, "a config for an unprivileged user");
  }
}

int Commands::dispatch(Runtime &rt, const Logger &log) {
  if (chosen(create) || chosen(run))
    create_opts.listen_fds = socket_activation_fds();
  if (chosen(create)) {
    auto pid = rt.create(id, create_opts);
    return pid ? 0 : report(log, pid.error());
  }
  if (chosen(start)) {
    auto r = rt.start(id);
    return r ? 0 : report(log, r.error());
  }
  if (chosen(state)) {
    auto s = rt.state(id);
    if (!s)
      return report(log, s.error());
    fmt::print("{}\n", oci::state_to_json(*s, true));
    return 0;
  }
  if (chosen(kill)) {
    auto sig = parse_signal(signal);
    if (!sig)
      return report(log, sig.error());
    auto r = rt.kill(id, *sig, all);
    return r ? 0 : report(log, r.error());
  }
  if (chosen(del)) {
    auto r = rt.remove(id, DeleteOptions{force});
    return r ? 0 : report(log, r.error());
  }
  if (chosen(run)) {
    auto code = rt.run(id, create_opts, run_opts);
    return code ? *code : report(log, code.error());
  }
  if (chosen(exec)) {
    // As runc: 255 tells a failure of exec itself from the process's own exit status.
    auto code = rt.exec(id, exec_opts);
    if (!code) {
      report(log, code.error());
      return kExecFailed;
    }
    return *code;
  }
  if (chosen(checkpoint)) {
    auto r = rt.checkpoint(id, checkpoint_opts);
    return r ? 0 : report(log, r.error());
  }
  if (chosen(restore)) {
    auto code = rt.restore(id, restore_opts);
    return code ? *code : report(log, code.error());
  }
  if (chosen(list))
    return print_list(rt, log, list_format, quiet);
  if (chosen(spec))
    return write_spec(log, spec_bundle, rootless);
  if (chosen(features)) {
    fmt::print("{}\n", features_json());
    return 0;
  }
  return 0;
}

} // namespace bulkhead::cli
