// bulkheadd: the hosting daemon. Parses its flags, runs the daemon core and its API until
// SIGTERM/SIGINT. Containers outlive it unless --stop-containers-on-exit is given.
#include <CLI/CLI.hpp>
#include <csignal>
#include <pthread.h>
#include <systemd/sd-daemon.h>
#include <thread>

#include <fmt/core.h>

#include "cli/completion.hpp"
#include "cli/manpage.hpp"
#include "cluster/etcd_client.hpp"
#include "daemon/api_server.hpp"
#include "daemon/container_disk.hpp"
#include "daemon/daemon.hpp"
#include "daemon/id_ranges.hpp"

namespace {

// The man page and the bash completion come from the flags above (hidden --generate-man,
// --generate-completion, as bulkheadctl's), so they cannot drift from what bulkheadd parses.
std::string man_page(const CLI::App &app) {
  bulkhead::cli::ManPageInfo info;
  info.section = "8";
  info.source = "bulkhead " BULKHEAD_VERSION;
  info.manual = "bulkhead manual";
  info.description =
      "bulkheadd is the hosting daemon of bulkhead: it runs long-lived system containers, each booting "
      "the init of a shared, read-only OS template (an overlay of the template and a private upper "
      "directory), and serves an HTTP/1.1 + JSON API on a unix socket (see docs/api.md), which "
      "bulkheadctl(1) drives.\n\n"
      "Every container has its own bulkhead-monitor process, so containers keep running when bulkheadd "
      "stops, is killed or is upgraded; a new bulkheadd adopts them again. Container records are kept "
      "under --root. bulkheadd must run as root; it stays in the foreground and tells systemd when it "
      "is ready (Type=notify). SIGTERM, SIGINT or SIGHUP stop it.";
  info.see_also = "bulkheadctl(1), bulkhead(8), lxcfs(1)";
  return bulkhead::cli::generate_manpage(app, info);
}

std::string completion(const CLI::App &app) {
  bulkhead::cli::CompletionInfo info;
  info.file_flags = {"--root", "--socket", "--monitor", "--lxcfs-dir"};
  return bulkhead::cli::generate_bash_completion(app, info);
}

} // namespace

int main(int argc, char **argv) {
  using namespace bulkhead::daemon;
  CLI::App app{"bulkheadd: the bulkhead hosting daemon (system containers from shared OS templates)",
               "bulkheadd"};
  DaemonOptions o;
  std::string socket = "/run/bulkhead/bulkheadd.sock";
  bool foreground = false, version = false, no_lxcfs = false, generate_man = false,
       generate_completion = false;
  app.add_option("--root", o.root, "state directory (records, templates, container layers)")
      ->capture_default_str();
  app.add_option("--socket", socket, "API socket")->capture_default_str();
  app.add_option("--cgroup-driver", o.cgroup_driver,
                 "how containers get their cgroups: systemd (a transient scope each, PREFIX-NAME.scope in a "
                 "slice), cgroupfs (a directory each), or auto: systemd when PID 1 is systemd and "
                 "--cgroup-parent is not a cgroup path")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "systemd", "cgroupfs"}));
  app.add_option("--cgroup-parent", o.cgroup_parent,
                 "where containers' cgroups go: a cgroup path for cgroupfs (default /bulkhead), SLICE or "
                 "SLICE:PREFIX for systemd (default machine.slice:bulkhead)");
  app.add_option("--monitor", o.monitor_binary,
                 "path of bulkhead-monitor (default: next to bulkheadd, else ../libexec/bulkhead/)");
  app.add_option("--lxcfs-dir", o.lxcfs_dir, "lxcfs mount point")->capture_default_str();
  app.add_flag("--no-lxcfs", no_lxcfs, "do not use lxcfs for container-aware /proc files");
  app.add_option("--onboot-parallel", o.onboot_parallel, "onboot containers started at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--start-timeout", o.start_timeout_ms, "milliseconds a container start may take")
      ->capture_default_str();
  app.add_option("--log-max", o.log_max, "bytes of console log kept per container (x2 with the rotated file)")
      ->capture_default_str();
  app.add_option("--storage", o.storage,
                 "storage backend of new containers: dir (plain upper directories, no disk quota) or ext4 "
                 "(a loop-mounted ext4 image per container: hard --disk and --disk-inodes limits)")
      ->capture_default_str()
      ->check(CLI::IsMember({"dir", "ext4"}));
  std::string disk_default = "10G";
  app.add_option("--disk-default", disk_default,
                 "ext4 storage: the disk quota of a container created without --disk")
      ->capture_default_str();
  app.add_option("--listen", o.listen,
                 "accept other hosts' daemons (TLS with paired certificates) on this address, e.g. "
                 "198.18.0.1:8443 or [fd00::1]:8443")
      ->type_name("ADDR:PORT");
  app.add_option("--host-name", o.host_name,
                 "this host's name for other hosts (default: the system's host name)")
      ->type_name("NAME");
  std::string cluster;
  app.add_option("--cluster", cluster,
                 "join the cluster of these etcd endpoints (comma-separated http://HOST:PORT); needs "
                 "--host-name and --listen (docs/cluster.md)")
      ->type_name("URL[,URL...]");
  app.add_flag("--cluster-self-fence", o.cluster_self_fence,
               "freeze this host's protected containers when its etcd lease may expire while their standby "
               "still reaches etcd, and decide once etcd answers (thaw, or fence when they failed over); "
               "docs/cluster.md \"Split brain\"");
  app.add_option("--cluster-ttl", o.cluster_ttl_s,
                 "seconds after its last keep-alive before etcd declares this host dead and its containers "
                 "fail over (the lease's TTL; renewed every TTL/3)")
      ->capture_default_str()
      ->check(CLI::Range(2, 600))
      ->type_name("SECONDS");
  app.add_option("--id-range", o.id_range,
                 "host uids and gids (the same numbers for both) from which unprivileged containers get "
                 "their 65536 ids each, instead of root's entries in /etc/subuid and /etc/subgid")
      ->type_name("BASE:COUNT");
  app.add_option("--subuid-file", o.subuid_file, "where root's subordinate uids are listed")
      ->capture_default_str()
      ->group("");
  app.add_option("--subgid-file", o.subgid_file, "where root's subordinate gids are listed")
      ->capture_default_str()
      ->group("");
  bool privileged_default = false, unprivileged_default = false;
  auto *priv_default =
      app.add_flag("--privileged-default", privileged_default,
                   "make a container privileged (root inside is root on the host) unless its create says "
                   "--unprivileged; without it a container is unprivileged (its own user namespace and id "
                   "range) unless its create says --privileged");
  // The default since it was flipped; still accepted so that older unit files keep working.
  app.add_flag("--unprivileged-default", unprivileged_default,
               "make a container unprivileged unless its create says --privileged (the default)")
      ->excludes(priv_default);
  app.add_flag("--stop-containers-on-exit", o.stop_containers_on_exit,
               "stop every container when the daemon exits");
  app.add_flag("--foreground", foreground,
               "stay in the foreground (the default; for symmetry with init scripts)");
  app.add_flag("-v,--version", version, "print the version");
  app.add_flag("--generate-man", generate_man, "print the man page (roff)")->group("");
  app.add_flag("--generate-completion", generate_completion, "print the bash completion script")->group("");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    fmt::print("bulkheadd version {}\n", BULKHEAD_VERSION);
    return 0;
  }
  if (generate_man || generate_completion) {
    fmt::print("{}", generate_man ? man_page(app) : completion(app));
    return 0;
  }
  o.lxcfs = !no_lxcfs;
  o.unprivileged_default = !privileged_default;
  if (!cluster.empty()) {
    // Checked before anything starts: a typo here would otherwise show only as a host missing
    // from the cluster.
    for (size_t pos = 0;;) {
      size_t comma = cluster.find(',', pos);
      o.cluster.push_back(cluster.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      if (comma == std::string::npos)
        break;
      pos = comma + 1;
    }
    if (o.host_name.empty() || o.listen.empty()) {
      fmt::print(stderr,
                 "bulkheadd: --cluster needs --host-name (the host's name in the cluster) and --listen "
                 "(the address other hosts reach it on)\n");
      return 1;
    }
    if (auto r = bulkhead::cluster::EtcdClient::create(o.cluster); !r) {
      fmt::print(stderr, "bulkheadd: --cluster {}: {}\n", cluster, r.error().text());
      return 1;
    }
  }
  if (!o.id_range.empty())
    if (auto r = bulkhead::daemon::parse_id_range(o.id_range); !r) {
      fmt::print(stderr, "bulkheadd: --id-range: {}\n", r.error().text());
      return 1;
    }
  if (auto bytes = bulkhead::daemon::disk_bytes_field(disk_default); bytes)
    o.disk_default = *bytes;
  else {
    fmt::print(stderr, "bulkheadd: --disk-default: {}\n", bytes.error().text());
    return 1;
  }
  if (::geteuid() != 0) {
    fmt::print(stderr, "bulkheadd: must run as root\n");
    return 1;
  }
  // Block the shutdown signals in every thread; one thread waits for them with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Daemon daemon(o);
  if (auto r = daemon.init(); !r) {
    fmt::print(stderr, "bulkheadd: {}\n", r.error().text());
    return 1;
  }
  ApiServer api(daemon, socket);
  if (auto r = api.bind(); !r) {
    fmt::print(stderr, "bulkheadd: {}\n", r.error().text());
    daemon.shutdown();
    return 1;
  }
  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    sd_notify(0, "STOPPING=1");
    api.stop();
  });
  std::thread onboot([&] { daemon.start_onboot(); });
  fmt::print(stderr, "bulkheadd: serving {} (root {})\n", socket, o.root);
  sd_notify(0, "READY=1");
  api.serve();
  onboot.join();
  daemon.shutdown();
  if (signals.joinable()) {
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
  }
  return 0;
}
