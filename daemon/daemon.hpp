// bulkheadd's core: the table of hosted containers, their lifecycle and their supervision.
//
// Process model (docs/daemon.md): the daemon is multithreaded (API threads, operations, one
// supervisor thread) and never forks. Each running container has one single-threaded
// `bulkhead-monitor`, started with posix_spawn in its own session, which builds the container
// through libbulkhead, is its init's parent, holds the console and outlives the daemon. The
// daemon watches each monitor through a pidfd; after a restart it re-adopts monitors by
// pid + start time from the records. Calls that do not clone (kill, pause, update, stats, delete)
// go from the daemon's threads straight to libbulkhead.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/runtime.hpp"
#include "bulkhead/unique_fd.hpp"
#include "daemon/cgroup_placement.hpp"
#include "daemon/cluster_control.hpp"
#include "daemon/cluster_member.hpp"
#include "daemon/cluster_trust.hpp"
#include "daemon/container_disk.hpp"
#include "daemon/events.hpp"
#include "daemon/monitor_client.hpp"
#include "daemon/networks.hpp"
#include "daemon/operations.hpp"
#include "daemon/peer_server.hpp"
#include "daemon/port_forwards.hpp"
#include "daemon/record_store.hpp"
#include "daemon/self_fence.hpp"
#include "daemon/snapshot_store.hpp"
#include "daemon/trust_store.hpp"
#include "storage/template_store.hpp"

namespace bulkhead::storage {
class ExportReader;
}

namespace bulkhead::daemon {

struct DaemonOptions {
  std::string root = "/var/lib/bulkhead";
  // daemon/cgroup_placement.hpp: "" is the driver's default (/bulkhead, or machine.slice).
  std::string cgroup_parent;
  std::string cgroup_driver = "auto"; // auto, systemd or cgroupfs
  std::string monitor_binary;         // empty: bulkhead-monitor next to the daemon's own binary
  std::string lxcfs_dir = "/var/lib/lxcfs";
  bool lxcfs = true; // bind lxcfs's /proc files into containers (started if not running)
  bool stop_containers_on_exit = false;
  int onboot_parallel = 4;
  int start_timeout_ms = 120000;
  uint64_t log_max = 1 << 20;
  std::string storage = "dir";                // backend of new containers (daemon/container_disk.hpp)
  uint64_t disk_default = uint64_t{10} << 30; // ext4: the image size of a create without --disk
  std::string listen;    // ADDR:PORT for other hosts' daemons (TLS; daemon/peer_server.cpp); empty: none
  std::string host_name; // how this host names itself to others; empty: gethostname()
  // etcd endpoints (http://HOST:PORT) of the cluster this host joins (daemon/cluster_member.hpp,
  // docs/cluster.md); empty: a single host, as before.
  std::vector<std::string> cluster;
  int64_t cluster_ttl_s = kLeaseTtlS; // --cluster-ttl: the lease's TTL (how soon a dead host is dead)
  // --cluster-self-fence: freeze protected containers when this host may have been declared dead
  // while its standbys still reach etcd (daemon/self_fence.hpp).
  bool cluster_self_fence = false;
  // Unprivileged containers (daemon/id_ranges.hpp, docs/unprivileged.md): where their id ranges
  // come from (--id-range BASE:COUNT wins over root's subordinate ids), and whether a create that
  // says neither --privileged nor --unprivileged makes one.
  std::string id_range;
  std::string subuid_file = "/etc/subuid", subgid_file = "/etc/subgid";
  bool unprivileged_default = true; // --privileged-default turns it off
};

class Daemon {
public:
  explicit Daemon(DaemonOptions options);
  ~Daemon();

  // Locks the root, loads the records, re-adopts running containers, starts supervision.
  Status init();
  // Starts the --onboot containers that are not running, at most onboot_parallel at once.
  void start_onboot();
  // Stops supervision (and the containers, with stop_containers_on_exit).
  void shutdown();

  // The API (daemon/api_server.cpp maps these to HTTP). Errors carry errno-style codes:
  // ENOENT (404), EEXIST/EBUSY (409), EINVAL (400).
  nlohmann::json server_info() const;

  // Pairing with other hosts (daemon_remotes.cpp, docs/remotes.md).
  Result<nlohmann::json> trust_add(const nlohmann::json &request);
  nlohmann::json trust_list();
  Status trust_remove(const std::string &name);
  Result<nlohmann::json> remote_add(const nlohmann::json &request);
  nlohmann::json remote_list();
  Status remote_remove(const std::string &name);
  nlohmann::json list();
  Result<nlohmann::json> info(const std::string &name);
  Result<nlohmann::json> create(const nlohmann::json &request);
  Result<nlohmann::json> set(const std::string &name, const nlohmann::json &request);
  Status destroy(const std::string &name, bool force);
  Result<std::shared_ptr<Operation>> change_state(const std::string &name, const nlohmann::json &request);
  Result<std::string> log_path(const std::string &name);
  Result<std::string> console_socket(const std::string &name);

  Result<nlohmann::json> templates();
  Result<nlohmann::json> template_info(const std::string &name);
  Result<std::shared_ptr<Operation>> import_template(const nlohmann::json &request);
  Status remove_template(const std::string &name);

  // Managed networks (daemon/networks.hpp); removal is refused while a container uses one.
  Networks &networks() { return networks_; }
  Status remove_network(const std::string &name);
  // At start: addresses the networks' IPAM holds for NICs no container record has (a crash
  // between allocation and the record's write) are given back.
  void reconcile_addresses();
  // `net attach/detach` (daemon/daemon_nic_hotplug.cpp): a NIC request as in CreateRequest's
  // "nets" added (hot-plugged when running), or a NIC (ethN, or the network of exactly one)
  // removed; each answers the NIC object.
  Result<nlohmann::json> attach_nic(const std::string &name, const nlohmann::json &request);
  Result<nlohmann::json> detach_nic(const std::string &name, const std::string &nic);
  // At start, after re-adoption: host ends the daemon made (alias bulkhead:nic/...) that no record
  // names (a crash in the middle of an attach) are deleted, with their IFBs.
  void remove_stray_nics();
  void finish_interrupted_migrations();

  // Port forwards (daemon/daemon_ports.cpp, docs/network.md "Port forwards"). ports(""): every
  // container's; add_port takes the API's {"host_port", "container_port", "proto"?}.
  Result<nlohmann::json> ports(const std::string &name);
  Result<nlohmann::json> add_port(const std::string &name, const nlohmann::json &request);
  Status remove_port(const std::string &name, const std::string &host_port, const std::string &proto);

  // Snapshots and backups (daemon/daemon_snapshots.cpp, docs/snapshots.md).
  Result<nlohmann::json> snapshots(const std::string &name);
  Result<std::shared_ptr<Operation>> create_snapshot(const std::string &name, const nlohmann::json &request);
  Result<std::shared_ptr<Operation>> restore_snapshot(const std::string &name, const std::string &snap);
  Status remove_snapshot(const std::string &name, const std::string &snap);
  Result<std::shared_ptr<Operation>> export_container(const std::string &name, const nlohmann::json &request);
  Result<std::shared_ptr<Operation>> import_container(const nlohmann::json &request);

  std::string metrics();
  EventBus &events() { return events_; }
  Operations &operations() { return operations_; }
  const DaemonOptions &options() const { return options_; }

  // Synchronous lifecycle steps (the operations call them; so do tests and the bench).
  // stateless: a saved state (stop --stateful) is discarded and the container boots afresh.
  Status start(const std::string &name, bool stateless = false);
  Status stop(const std::string &name, int timeout_s);

  // Checkpoint/restore with CRIU (daemon/daemon_checkpoint.cpp, docs/checkpoint.md).
  // checkpoint: {"snapshot"?, "stop"?}; restore: {"snapshot"?} (default: the newest checkpoint).
  Result<std::shared_ptr<Operation>> checkpoint(const std::string &name, const nlohmann::json &request);
  Result<std::shared_ptr<Operation>> restore_checkpoint(const std::string &name,
                                                        const nlohmann::json &request);

  // Migration to a paired remote (daemon/daemon_migrate.cpp, docs/migration.md): {"remote",
  // "mode"?: "cold"|"live"}. The operation's metadata: mode, remote, bytes, downtime_ms.
  Result<std::shared_ptr<Operation>> migrate(const std::string &name, const nlohmann::json &request);

  // Evacuation (daemon/daemon_evacuate.cpp, docs/migration.md "Evacuating a host"): every container
  // of this host moves to a paired remote through migrate(), at most "parallel" at once.
  // {"remote", "parallel"?: 1..8, "mode"?: "cold"|"live", "dry_run"?: bool}. While one runs, this
  // host creates and starts no container (EBUSY "host ... is being evacuated ...").
  Result<std::shared_ptr<Operation>> evacuate(const nlohmann::json &request);
  // `cluster rebalance` {"parallel"?, "mode"?, "dry_run"?} (docs/migration.md "Rebalancing a
  // cluster"): moves this host's containers, each as migrate does, to the least loaded hosts it
  // can reach until it holds at most one more than the least loaded; creates go on meanwhile.
  Result<std::shared_ptr<Operation>> rebalance(const nlohmann::json &request);
  // GET /1.0/host: {"host_name", "state": "normal"|"evacuating", "containers", "evacuation"}.
  nlohmann::json host_info();
  // Failover (issue 14, daemon/daemon_replica.cpp): runs here the replica of NAME this host holds as
  // a standby (its last complete image set: restored from memory images, or booted from its disk),
  // under the same name, addresses and limits. ENOENT when this host holds no replica of NAME.
  Status activate_replica(const std::string &name);
  // The same, with what happened: {"name", "how": "restored"|"booted"|"stopped", "note"?, "source",
  // "mode", "age_ms"} (POST /1.0/replicas/NAME/activate).
  Result<nlohmann::json> activate_replica_report(const std::string &name);
  // GET /1.0/replicas: the replicas this host holds as a standby (daemon/daemon_replica.cpp).
  nlohmann::json replicas();

  // Continuous replication of a container to a standby host (daemon/replicator.cpp,
  // docs/replication.md): {"standby", "interval_ms"?, "mode"?: "memory"|"disk"}; unprotect stops it
  // and asks the standby to drop its replica (best effort; the answer says whether it did).
  Result<nlohmann::json> protect(const std::string &name, const nlohmann::json &request);
  Result<nlohmann::json> unprotect(const std::string &name);
  // GET /1.0/cluster (daemon/cluster_member.hpp): {"enabled": false} without --cluster.
  Result<nlohmann::json> cluster_info();
  // The cluster's trust (daemon/daemon_cluster_trust.cpp, docs/remotes.md): `cluster token NAME`
  // {"name", "expires_in_s"?} makes (once) the cluster's key and a one-time token for host NAME;
  // `cluster join` {"token", "address"?} fetches the key from the member that made the token.
  Result<nlohmann::json> cluster_token(const nlohmann::json &request);
  Result<nlohmann::json> cluster_join(const nlohmann::json &request);

private:
  struct Entry {
    // Serializes this container's lifecycle; guards everything below. Lock order: mu, then
    // table_mu_; never lock an entry while holding table_mu_ (copy the table out first).
    std::mutex mu;
    std::condition_variable changed;
    ContainerRecord rec;
    UniqueFd watch_fd;          // pidfd of the monitor (or of init when its monitor was lost)
    bool watching_init = false; // the monitor died but init lives: watch init directly
    int64_t restart_at_ms = 0;  // a scheduled restart (backoff), 0 = none
    uint64_t generation = 0;    // bumped on every exit, so waiters see that one happened
    // The last disk usage measured by a tree walk (storage "dir"), and when: info and list reuse
    // it for kDirUsageMaxAgeMs instead of walking the whole upper layer on every call.
    DiskUsage dir_usage;
    int64_t dir_usage_at_ms = 0;
    // Bumped on every CRIU dump or pre-dump of the tree: each one resets the kernel's soft-dirty
    // bits, so a replication round whose last dump is not the latest must not take it as parent.
    uint64_t dumps = 0;
    // The next replication round's checkpoint worker, asked for right after a round's freeze so that
    // CRIU's start (most of a round's preparation under emulation) is off the next round's path.
    // It holds the monitor's one checkpoint slot: every other dump drops it first
    // (prepare_dump, pre_dump), and so does the container's exit.
    std::optional<MonitorDump> standing_dump;
    // rec.config.idmap, set before the entry is in entries_ and never changed after: create reads
    // the other containers' ranges under table_mu_ alone (never locking an entry there).
    std::optional<IdMap> idmap;
  };
  using EntryPtr = std::shared_ptr<Entry>;

  EntryPtr find(const std::string &name);
  Result<EntryPtr> get(const std::string &name);
  // `bulk` (list, metrics) may reuse a dir-backend usage walk up to kDirUsageMaxAgeMs old; a
  // single container's info always measures afresh.
  nlohmann::json info_locked(Entry &e, bool bulk = false);
  Result<DiskUsage> disk_usage_locked(Entry &e, bool bulk); // daemon_info.cpp
  Status save_locked(Entry &e);
  // Freezes a running container or thaws a frozen one (cgroup freezer), records the state and
  // publishes container-frozen|unfrozen with detail; the caller checked the state it starts from.
  Status set_frozen_locked(Entry &e, bool freeze, const nlohmann::json &detail = nlohmann::json::object());
  // restore_images: a CRIU image directory the container resumes from instead of booting; empty:
  // its saved state (stop --stateful) when there is one, unless stateless.
  Status start_locked(Entry &e, std::unique_lock<std::mutex> &lock, const std::string &restore_images = {},
                      bool stateless = false);
  // daemon_checkpoint.cpp
  // Step 3 of daemon_checkpoint.cpp's table in two halves: prepare_dump asks the container's monitor
  // before the caller freezes it (the monitor's worker starts CRIU meanwhile), dump_locked has it
  // dump. parent: the last pre-dump of a live migration or the last replication round (only pages
  // changed since it are dumped), relative to images for prepare_dump, absolute for checkpoint_op.
  Result<MonitorDump> prepare_dump(Entry &e, const std::string &images, bool stop,
                                   const std::string &parent = {});
  // images (and parent, relative to it): named at the go instead of at prepare_dump.
  Status dump_locked(Entry &e, std::unique_lock<std::mutex> &lock, MonitorDump &prepared, bool stop,
                     const std::string &images = {}, const std::string &parent = {});
  Result<std::shared_ptr<Operation>> checkpoint_op(const std::string &name, const std::string &snap,
                                                   bool stop, const std::string &parent);
  // One pre-copy round of a live migration: the running container's memory pages (those changed
  // since `parent`, relative to images, when given) into `images`; it runs on.
  Status pre_dump(const std::string &name, const std::string &images, const std::string &parent);
  Status stop_stateful_locked(Entry &e, std::unique_lock<std::mutex> &lock);
  std::string saved_state_path(const std::string &name) const;
  std::string pending_saved_state(const std::string &name, bool stateless);
  Status stop_locked(Entry &e, std::unique_lock<std::mutex> &lock, int timeout_s);
  void watch_locked(Entry &e, UniqueFd fd, bool init);
  void adopt(const EntryPtr &e);
  void handle_exit(const EntryPtr &e);
  void cleanup_leftovers_locked(Entry &e);
  void readopt_nics_locked(Entry &e); // daemon_nics.cpp
  // daemon_ports.cpp: puts the container's forwards in (or takes them out of) the NAT tables.
  Status activate_ports_locked(Entry &e, bool active);
  Status refresh_nat(const std::string &network);
  void supervise();
  void wake_supervisor();
  Status init_peers(); // daemon_remotes.cpp
  Status init_cgroup_placement();
  std::string cgroup_parent_text() const {
    return cgroups_.systemd ? cgroups_.parent + ":" + cgroups_.prefix : cgroups_.parent;
  }
  // daemon_migrate.cpp: the peer requests of a migration's target side (before peers_->start()).
  void register_migration_handlers();
  Status serve_migrate_check(migration::PeerConnection &conn, const migration::PeerMessage &request);
  Status serve_migrate_receive(migration::PeerConnection &conn, const TrustedPeer &peer,
                               const migration::PeerMessage &request);
  // precopy_rounds: at most this many pre-copy rounds (live); 0 = stop and copy (the final dump
  // holds all memory).
  Status migrate_work(const std::string &name, const std::string &remote, const std::string &mode,
                      Operation &op, int precopy_rounds);
  // The migrate.check request for a container (step 2 of daemon_migrate.cpp); digests caches the
  // templates' tree digests (an evacuation asks for many containers of one template).
  Result<nlohmann::json> migrate_check_request(const std::string &name, const ContainerConfig &config,
                                               Operation &op, std::map<std::string, std::string> *digests,
                                               bool live = false);
  // restore_checkpoint without the evacuation's refusal: a failed live migration brings its
  // container back with it, also while the host is being evacuated.
  Result<std::shared_ptr<Operation>> restore_checkpoint_op(const std::string &name,
                                                           const nlohmann::json &request);
  // daemon_evacuate.cpp
  // rebalance: `cluster rebalance` (only the containers plan_rebalance picks move; the host is not
  // marked evacuating).
  Status evacuate_work(const std::string &remote, int parallel, const std::string &mode, bool dry_run,
                       Operation &op, bool rebalance = false);
  std::atomic<bool> rebalancing_{false}; // one `cluster rebalance` at a time
  // EBUSY naming the evacuation when one runs ("creating NAME: host H is being evacuated to R ...").
  Status refuse_while_evacuating(const std::string &what);
  Runtime runtime() const;
  // Whether a create could claim exactly `want` now (in this daemon's pool, no container's range
  // overlapping it): a migration's check before the source freezes anything.
  Status id_range_free(const IdMap &want);
  // The id ranges of every container here; table_mu_ held.
  std::vector<IdMap> used_id_ranges_locked() const;
  // Continuous replication, source side (daemon/replicator.cpp): one thread runs the captures of
  // every protected container, one at a time; each set streams on a thread of its own while the
  // next capture comes on schedule (docs/replication.md "Process model").
  struct Replication;
  struct ReplicaChannel;
  struct Shipment;
  void start_replicator();
  void stop_replicator();
  void replicator_loop();
  nlohmann::json replication_json(const std::string &name, const Protection &p);
  Status replicate_round(const std::string &name, const Protection &p, Replication &st,
                         const std::shared_ptr<ReplicaChannel> &channel, int64_t freeze_at_ms,
                         int64_t turn_start_ms);
  Status open_replica_channel(ReplicaChannel &channel, const Remote &remote, const std::string &where);
  Status ship_set(Shipment &s);
  Status apply_shipment(Replication &st);
  Status apply_oldest_shipment(Replication &st);
  Status send_replica_drop(const std::string &standby, const std::string &name);
  // Standby side (daemon/daemon_replica.cpp): the peer requests replica.* and the replicas' dirs.
  void register_replica_handlers();
  void sweep_replicas();
  std::string replica_dir(const std::string &name) const { return options_.root + "/replicas/" + name; }
  Status serve_replica_check(migration::PeerConnection &conn, const migration::PeerMessage &request);
  Status serve_replica_begin(migration::PeerConnection &conn, const TrustedPeer &peer,
                             const migration::PeerMessage &request);
  Status serve_replica_drop(migration::PeerConnection &conn, const migration::PeerMessage &request);
  // A replica's chain flattened in the background between sets (daemon/replica_flattening.cpp).
  struct ReplicaFlattening;
  void flatten_replica_ahead(const std::string &name, const std::string &set_images,
                             const std::string &images, int chain);
  Result<bool> adopt_flattened_ahead(const std::string &name, int imgroot_fd, const std::string &top,
                                     int length, int64_t *waited_ms);
  void cancel_replica_flattening(const std::string &name);
  void discard_replica_flattening(const std::string &name);
  void stop_replica_flattenings();
  // Marks a replica busy (a set arriving, an activation, a drop): one at a time per name.
  // wait: how long a claim held by another (a set's receiver finishing after its commit's answer)
  // is waited for before EBUSY.
  Status claim_replica(const std::string &name, const std::string &what,
                       std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  void release_replica(const std::string &name);
  // freeze false: a running container is copied as it runs (see presync_snapshot).
  Result<SnapshotStaging> copy_upper_locked(Entry &e, const std::string &purpose, Operation *op,
                                            std::string *consistency, bool freeze = true);
  // Copies the upper layer (frozen or not, as copy_upper_locked) into a new snapshot `snap` and
  // commits it; its metadata. EEXIST when the container has one of that name.
  Result<nlohmann::json> snapshot_locked(Entry &e, const std::string &snap, Operation &op, bool freeze);
  // A live migration's disk pre-sync (daemon_migrate.cpp): snapshot `snap` of a running container
  // copied without freezing it, every file written shortly before or during the copy marked so an
  // incremental export against it sends that file again (storage::copy_upper's unsettled_since).
  Status presync_snapshot(const std::string &name, const std::string &snap, Operation &op);
  Status restore_locked(Entry &e, int src_fd, const std::string &what, Operation *op);
  Status import_snapshot_locked(Entry &e, const std::string &snap, const std::string &id, int upper_fd);
  // exact_nics (migration): the NICs keep their addresses, and a network missing here is an error
  // instead of a dropped NIC. An unprivileged container gets a range of this host and its files are
  // shifted into it, unless keep_ids (its memory images follow: CRIU's images carry the range), where
  // it must get its own range here or the import fails (EBUSY, ENOSPC) before anything is made.
  Status import_full(storage::ExportReader &reader, const std::string &name, const ContainerConfig &config,
                     Operation &op, bool exact_nics = false, bool keep_ids = false);
  Status import_incremental(storage::ExportReader &reader, const std::string &name, Operation &op);
  // daemon_migrate.cpp: a live migration's final export, incremental against its disk pre-sync,
  // applied in place to the arrival's upper layer.
  Status apply_migration_delta(storage::ExportReader &reader, const std::string &name, Operation &op);
  nlohmann::json monitor_request(const ContainerRecord &rec, const storage::TemplateInfo &tmpl,
                                 const std::string &restore_images) const;

  DaemonOptions options_;
  RecordStore records_;
  storage::TemplateStore templates_;
  SnapshotStore snapshots_;
  Networks networks_;
  PortTable ports_;
  // Serializes the rebuilds of NAT tables (refresh_nat). Taken under an entry's mu; only the
  // leaf locks of networks_ and ports_ are taken under it.
  std::mutex nat_mu_;
  EventBus events_;
  Operations operations_;
  UniqueFd lock_fd_;
  std::mutex table_mu_;
  std::map<std::string, EntryPtr> entries_;
  UniqueFd epoll_fd_, wake_fd_;
  std::thread supervisor_;
  std::atomic<bool> stopping_{false}; // exits are stops from now on (no restarts)
  std::atomic<bool> quit_{false};     // the supervisor thread ends
  bool lxcfs_ready_ = false;
  CgroupPlacement cgroups_; // resolved in init()
  int64_t started_ms_ = 0;
  std::unique_ptr<migration::PeerIdentity> identity_;
  std::unique_ptr<TrustStore> trust_;
  std::unique_ptr<ClusterTrust> cluster_trust_; // attached to etcd by join_cluster()
  std::unique_ptr<PeerServer> peers_;
  // The host this daemon connects to by `name`: a paired remote (`remote add`), else a member of
  // the cluster whose entry verifies under the cluster's key (named by its --host-name).
  Result<Remote> peer_remote(const std::string &name);
  // Makes this host's cluster key if it has none and the cluster has none yet, and publishes its
  // signed entry; an error when the cluster's key is another one (join instead).
  Status ensure_cluster_key();
  std::unique_ptr<ClusterMember> cluster_;  // with --cluster
  std::unique_ptr<ClusterControl> control_; // placements, fencing, activation, leader (with --cluster)
  std::unique_ptr<SelfFence> self_fence_;   // with --cluster-self-fence
  // Read by the peer and replication threads, set once the cluster is joined / started.
  std::atomic<const ClusterMember *> lease_source_{nullptr};
  std::atomic<SelfFence *> self_fence_ptr_{nullptr};
  SelfFenceHooks self_fence_hooks();
  // daemon/fencing.cpp. At start, before re-adoption: joins (an error when etcd cannot be reached)
  // and marks fenced the containers whose placement names another host.
  Status join_cluster();
  // After re-adoption, before onboot: stops the fenced containers that run, starts the threads.
  void start_cluster();
  std::vector<LocalContainer> cluster_locals();
  void fence(const std::string &name, const std::string &owner);
  void unfence(const std::string &name);
  // create: the name is claimed in the cluster (EEXIST when another host owns it); destroy: its
  // placement goes, when it names this host.
  Status claim_placement(const std::string &name);
  void release_placement(const std::string &name);
  // Migration: the target takes the placement over from the source once the container exists here
  // (and hands it back when the arrival fails); the source reclaims it when its migration failed.
  Status take_placement(const std::string &name, const std::string &from);
  void give_placement(const std::string &name, const std::string &to);
  // Names migrating in or out: the cluster thread neither publishes nor fences them meanwhile.
  void cluster_busy(const std::string &name, bool busy);
  std::mutex cluster_busy_mu_;
  std::set<std::string> cluster_busy_;
  // The containers' states for the cluster's thread, without waiting on a busy container.
  std::map<std::string, std::string> cluster_states();
  std::mutex cluster_states_mu_;
  std::map<std::string, std::string> cluster_last_states_; // a busy container's last known state
  // The evacuation that runs (at most one). evacuating_ is read without the lock by create() and
  // the starts; create() counts itself in creating_ before it reads the flag, and an evacuation
  // sets the flag and then waits for creating_ to reach 0 before it lists the containers, so a
  // create either is refused or made a container the evacuation sees (both atomics seq_cst).
  std::atomic<bool> evacuating_{false};
  std::atomic<int> creating_{0};
  // Replication (daemon/replicator.cpp): repl_mu_ guards repl_ and repl_busy_; lock order: an
  // entry's mu, then repl_mu_ (the replicator never locks an entry while holding repl_mu_).
  std::mutex repl_mu_;
  std::condition_variable repl_cv_;
  std::map<std::string, std::shared_ptr<Replication>> repl_;
  std::string repl_busy_; // the container whose round runs now
  bool repl_quit_ = false;
  std::thread replicator_;
  // Standby side: the replicas being written, activated or dropped now.
  std::mutex replica_mu_;
  std::condition_variable replica_cv_; // a claim released
  std::set<std::string> replica_busy_;
  // The socket of each set arriving, by replica name: an activation cuts it (daemon_replica.cpp).
  std::map<std::string, int> replica_receiving_;
  // The flattening ahead of each replica that has one (at most one per replica).
  std::map<std::string, std::shared_ptr<ReplicaFlattening>> replica_flattening_;
  std::mutex evac_mu_; // guards evacuation_
  struct Evacuation {
    std::string operation, remote, mode;
    int parallel = 1;
    int64_t started_ms = 0;
  } evacuation_;
};

} // namespace bulkhead::daemon
