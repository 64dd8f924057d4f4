// `checkpoint` and `restore` (runc's commands): describe a container to CRIU (migration/criu.hpp)
// so the restored tree is the same container, and keep the state directory in step.
//
// What CRIU is told, and why (docs/checkpoint.md):
// - root: the rootfs (dump), a bind of it under the state dir (restore: CRIU wants a mount point);
// - external mounts, keyed by their destination: the config's bind mounts (their sources are host
//   paths CRIU must not dump), files masked with /dev/null, device nodes bound from the host (user
//   namespaces) and a cgroup mount that binds the host cgroup directory; masked directories too,
//   under one key: CRIU would archive each mask's (empty) tmpfs with tar and gzip at the dump and
//   unpack it at the restore, two program starts each, all inside the freeze; the restore binds
//   a fresh empty read-only tmpfs of its own there instead (mount_mask_source);
// - for bulkheadd (CheckpointOptions::tmpfs_by_runtime), the spec's tmpfs mounts too, for the same
//   reason: their files are copied into the images by the runtime (runtime/checkpoint_tmpfs.hpp);
// - external namespaces: a network or pid namespace the config joins by path (it outlives the
//   container, so it is handed back, not recreated); --empty-ns network does the same with a
//   fresh namespace at restore, except for a container with its own user namespace: there CRIU
//   leaves the namespace's contents out and makes it afresh inside the restored user namespace
//   (a namespace made outside would leave root inside without power over its own network);
// - a user namespace: the restored tasks read their images as its root, so the images are lent
//   to that uid during the restore (images_lent.hpp);
// - the cgroup: frozen through cgroup.freeze at dump, the new container's cgroup as cgroup root at
//   restore (its limits set before any task enters);
// - the terminal: orphan-pts-master, so restore gets the pty master for --console-socket;
// - stdio pipes (descriptors.json, runc's file): restore hands its own stdio in their place.
#include <csignal>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bulkhead/fd_passing.hpp"
#include "bulkhead/io.hpp"
#include "bulkhead/revert.hpp"
#include "cgroups/cgroup.hpp"
#include "cgroups/freezer.hpp"
#include "cgroups/resources.hpp"
#include "migration/criu.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"
#include "rootfs/devices.hpp"
#include "rootfs/masks.hpp"
#include "rootfs/mounts.hpp"
#include "rootfs/safe_path.hpp"
#include "runtime/checkpoint_netns.hpp"
#include "runtime/checkpoint_tmpfs.hpp"
#include "runtime/console.hpp"
#include "runtime/container.hpp"
#include "runtime/foreground.hpp"
#include "runtime/images_lent.hpp"
#include "runtime/restore_mount.hpp"
#include "runtime/restore_scope.hpp"
#include "runtime/rootless.hpp"

namespace bulkhead::runtime {

namespace {

constexpr const char *kDescriptors = "descriptors.json"; // runc's name, so images stay exchangeable
constexpr const char *kNetKey = "extRootNetNS";
constexpr const char *kPidKey = "extRootPidNS";
constexpr const char *kMaskedDirKey = "bulkhead-masked-dir";

std::string default_image_path(const std::string &given) {
  if (!given.empty())
    return given;
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd))
    return "checkpoint";
  return std::string(cwd) + "/checkpoint";
}

Status make_dir(const std::string &path, const char *flag) {
  if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST)
    return failf_errno("{} {}: creating the directory", flag, path);
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    return failf("{} {}: not a directory", flag, path);
  return {};
}

Result<oci::Spec> load_spec_text(const std::string &text, const std::string &where) {
  oci::Spec spec = BH_TRY(context(oci::parse_spec(text), where));
  BH_CHECK(oci::validate_spec(spec));
  if (!spec.process || !spec.linux)
    return failf("{}: process and linux are required", where);
  return spec;
}

const oci::Namespace *find_namespace(const oci::Spec &spec, oci::NamespaceType t) {
  for (const auto &ns : spec.linux->namespaces)
    if (ns.type == t)
      return &ns;
  return nullptr;
}

bool has_user_namespace(const oci::Spec &spec) { return find_namespace(spec, oci::NamespaceType::User); }

// The host uid and gid that are root inside the container's user namespace.
std::optional<std::pair<uid_t, gid_t>> mapped_root(const oci::Spec &spec) {
  auto host_of_zero = [](const std::vector<oci::IdMapping> &maps) -> std::optional<uint32_t> {
    for (const auto &m : maps)
      if (m.container_id == 0 && m.size > 0)
        return m.host_id;
    return std::nullopt;
  };
  auto uid = host_of_zero(spec.linux->uid_mappings);
  auto gid = host_of_zero(spec.linux->gid_mappings);
  if (!uid || !gid)
    return std::nullopt;
  return std::pair<uid_t, gid_t>{*uid, *gid};
}

bool has_cgroup_namespace(const oci::Spec &spec) { return find_namespace(spec, oci::NamespaceType::Cgroup); }

bool mounts_host_cgroup(const oci::Spec &spec, const oci::Mount &m) {
  return m.type == "cgroup" && !has_cgroup_namespace(spec);
}

// Device nodes bind-mounted from the host (containers in a user namespace cannot mknod).
std::vector<std::string> bound_devices(const oci::Spec &spec) {
  std::vector<std::string> out;
  if (!has_user_namespace(spec))
    return out;
  for (const auto &d : rootfs::default_devices())
    out.push_back(d.path);
  for (const auto &d : spec.linux->devices)
    out.push_back(d.path);
  return out;
}

Result<unsigned> empty_ns_flags(const std::vector<std::string> &names) {
  return migration::parse_empty_ns(names);
}

// The dump hands the container's network namespace to CRIU as external (its config's path, or
// --empty-ns network), and no user namespace owns it: the namespaces CRIU may run in instead
// (CheckpointOptions::skip_idle_network_lock).
bool netns_external_to_criu(const oci::Spec &spec, unsigned empty_ns) {
  const oci::Namespace *net = find_namespace(spec, oci::NamespaceType::Network);
  return net && !has_user_namespace(spec) && (!net->path.empty() || (empty_ns & CLONE_NEWNET));
}

// Before CRIU starts: the container's namespace if the dump may run CRIU in it. Read without the
// container's lock (the caller's freeze comes after CRIU's start), so looked at again once frozen.
// Nothing here fails the checkpoint: the dump then locks the network as it always did.
std::optional<IdleNetns> peek_idle_netns(const RuntimeOptions &ro, const StateStore &store,
                                         const std::string &id, unsigned empty_ns) {
  auto why_not = [&ro, &id](const std::string &m) {
    log_debug(ro, fmt::format("checkpoint {}: CRIU locks the network: {}", id, m));
  };
  auto looked = [&]() -> Result<std::pair<pid_t, oci::Spec>> {
    ContainerDir dir = BH_TRY(store.open_unlocked(id));
    ContainerRecord rec = BH_TRY(dir.load());
    std::string text = BH_TRY(read_file_at(dir.fd(), "config.json"));
    oci::Spec spec = BH_TRY(load_spec_text(text, dir.path() + "/config.json"));
    return std::pair<pid_t, oci::Spec>(rec.init.pid, std::move(spec));
  }();
  if (!looked) {
    why_not(looked.error().text());
    return std::nullopt;
  }
  if (!netns_external_to_criu(looked->second, empty_ns)) {
    why_not("no network namespace of its own outside a user namespace");
    return std::nullopt;
  }
  return idle_network_namespace(looked->first, why_not);
}

// "net[4026532008]:extRootNetNS": the namespace CRIU leaves alone at dump and takes from an
// inherited fd at restore.
Result<std::string> external_ns(pid_t pid, const char *proc_name, const char *criu_name, const char *key) {
  struct stat st {};
  auto path = fmt::format("/proc/{}/ns/{}", pid, proc_name);
  if (::stat(path.c_str(), &st) < 0)
    return failf_errno("{}", path);
  return fmt::format("{}[{}]:{}", criu_name, st.st_ino, key);
}

Status thaw_if_left_frozen(const ContainerRecord &rec, bool was_paused) {
  if (was_paused || rec.cgroup_path.empty())
    return {};
  auto path = rec.cgroup_mount + rec.cgroup_path + "/cgroup.freeze";
  auto f = read_file(path);
  if (f && !f->empty() && (*f)[0] == '1')
    return write_file_at(AT_FDCWD, path, "0", O_WRONLY);
  return {};
}

// The flags checkpoint and restore share, into CRIU's request.
void copy_shared_flags(const CriuOptions &o, migration::CgroupMode mode, migration::Request &req) {
  req.work_dir = o.work_path;
  req.tcp_established = o.tcp_established;
  req.ext_unix_sk = o.ext_unix_sk;
  req.shell_job = o.shell_job;
  req.file_locks = o.file_locks;
  req.auto_dedup = o.auto_dedup;
  req.lazy_pages = o.lazy_pages;
  req.cgroup_mode = mode;
}

} // namespace

Status checkpoint_container(const RuntimeOptions &ro, const std::string &id, const CheckpointOptions &given) {
  CheckpointOptions o = given; // before_dump may name the images
  auto cg_mode = BH_TRY(migration::parse_cgroup_mode(o.manage_cgroups_mode));
  unsigned empty_ns = BH_TRY(empty_ns_flags(o.empty_ns));
  if (o.leave_running && o.pre_dump)
    log_debug(ro, "checkpoint: --pre-dump leaves the container running anyway");
  migration::DumpRequest req;
  if (!o.page_server.empty()) {
    auto colon = o.page_server.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        std::sscanf(o.page_server.c_str() + colon + 1, "%d", &port) != 1 || port <= 0 || port > 65535)
      return failf("--page-server {:?}: must be ADDRESS:PORT", o.page_server);
    req.page_server_address = o.page_server.substr(0, colon);
    req.page_server_port = port;
  }
  if (o.status_fd >= 0 && ::fcntl(o.status_fd, F_GETFD) < 0)
    return failf_errno("--status-fd {}", o.status_fd);

  // CRIU first, then the caller's freeze (before_dump), then the container's lock: the caller
  // freezes through this library, which takes that lock too.
  StateStore store(ro.root);
  std::optional<IdleNetns> idle;
  if (o.skip_idle_network_lock && o.leave_running && !o.pre_dump)
    idle = peek_idle_netns(ro, store, id, empty_ns);
  std::optional<migration::CriuService> service;
  if ((o.before_dump && !o.pre_dump) || idle)
    service.emplace(BH_TRY(migration::CriuService::start(idle ? idle->netns.get() : -1)));
  if (o.before_dump && !o.pre_dump)
    BH_CHECK(o.before_dump(o));
  std::string images = default_image_path(o.image_path);
  bool was_paused = false;
  ContainerRecord rec;
  {
    ContainerDir dir = BH_TRY(store.open(id));
    rec = BH_TRY(dir.load());
    auto status = compute_status(dir, rec);
    if (status != "running" && status != "paused")
      return failf("container {:?} cannot be checkpointed: it is {} (only a running or paused container)", id,
                   status);
    was_paused = status == "paused";
    std::string config_where = dir.path() + "/config.json";
    std::string config_text = BH_TRY(read_file_at(dir.fd(), "config.json"));
    oci::Spec spec = BH_TRY(load_spec_text(config_text, config_where));
    log_debug(ro, fmt::format("checkpoint {}: state and config read", id));

    BH_CHECK(make_dir(images, "--image-path"));
    if (!o.work_path.empty())
      BH_CHECK(make_dir(o.work_path, "--work-path"));
    pid_t pid = rec.init.pid;
    if (idle && !still_idle(*idle, pid, [&ro, &id](const std::string &m) {
          log_debug(ro, fmt::format("checkpoint {}: CRIU locks the network after all: {}", id, m));
        })) {
      idle.reset();
      service.reset(); // it runs in the container's namespace; dump() starts CRIU out here
    }
    req.images_dir = images;
    copy_shared_flags(o, cg_mode, req);
    req.root = rec.rootfs;
    req.pid = pid;
    req.leave_running = o.leave_running;
    req.pre_dump = o.pre_dump;
    req.parent_path = o.parent_path;
    req.status_fd = o.status_fd;
    if (!rec.cgroup_path.empty())
      req.freeze_cgroup = rec.cgroup_mount + rec.cgroup_path;

    // A pre-dump only copies memory: mounts, namespaces and fds are described at the final dump.
    if (!o.pre_dump) {
      for (const auto &m : spec.mounts)
        if (rootfs::is_bind_mount(m) || mounts_host_cgroup(spec, m))
          req.ext_mounts.push_back({m.destination, m.destination});
      for (const auto &p : spec.linux->masked_paths) {
        struct stat st {};
        if (::stat(fmt::format("/proc/{}/root{}", pid, p).c_str(), &st) == 0)
          req.ext_mounts.push_back({p, S_ISDIR(st.st_mode) ? kMaskedDirKey : "/dev/null"});
      }
      for (const auto &d : bound_devices(spec))
        req.ext_mounts.push_back({d, d});
      const oci::Namespace *net = find_namespace(spec, oci::NamespaceType::Network);
      if (net && net->path.empty() && (empty_ns & CLONE_NEWNET) && has_user_namespace(spec)) {
        req.empty_ns |= CLONE_NEWNET; // restored afresh inside the tree's user namespace
      } else if (idle) {
        req.tree_in_criu_netns = true; // CRIU neither saves nor locks it (checkpoint_netns.hpp)
        req.tcp_established = false;   // there is no connection to save
      } else if (net && (!net->path.empty() || (empty_ns & CLONE_NEWNET))) {
        req.externals.push_back(BH_TRY(external_ns(pid, "net", "net", kNetKey)));
      }
      BH_CHECK(mark_criu_netns(images, req.tree_in_criu_netns));
      const oci::Namespace *pidns = find_namespace(spec, oci::NamespaceType::Pid);
      if (pidns && !pidns->path.empty())
        req.externals.push_back(BH_TRY(external_ns(pid, "pid", "pid", kPidKey)));

      nlohmann::json fds = nlohmann::json::array();
      for (int fd = 0; fd < 3; ++fd) {
        char target[4096];
        ssize_t n = ::readlink(fmt::format("/proc/{}/fd/{}", pid, fd).c_str(), target, sizeof target - 1);
        fds.push_back(n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string("/dev/null"));
      }
      BH_CHECK(write_file_atomic(images + "/" + kDescriptors, fds.dump(), 0600));
    }
    // The tmpfs copy must see what the dump sees: the container stays frozen from the copy on.
    std::optional<cgroups::Cgroup> frozen_here;
    if (o.tmpfs_by_runtime && !o.pre_dump && !rec.cgroup_path.empty()) {
      cgroups::Cgroup cg(rec.cgroup_mount, rec.cgroup_path);
      if (!was_paused) {
        BH_CHECK(context(cgroups::freeze(cg), "checkpoint " + id + ": freezing for the tmpfs copy"));
        frozen_here = cg;
      }
      auto saved = save_tmpfs_mounts(pid, spec, images, req.ext_mounts, [&ro, &id](const std::string &m) {
        log_debug(ro, fmt::format("checkpoint {}: {}", id, m));
      });
      if (saved)
        req.ext_mounts.insert(req.ext_mounts.end(), saved->begin(), saved->end());
      else
        log_warning(ro,
                    fmt::format("checkpoint {}: tmpfs mounts left to CRIU: {}", id, saved.error().text()));
    }
    log_debug(ro,
              fmt::format("checkpoint {}: {} of pid {} into {} ({} external mounts, {} external namespaces)",
                          id, o.pre_dump ? "pre-dump" : "dump", pid, images, req.ext_mounts.size(),
                          req.externals.size()));
    req.service = service ? &*service : nullptr;
    req.progress = [&ro, &id](const std::string &m) {
      log_debug(ro, fmt::format("checkpoint {}: {}", id, m));
    };
    auto dumped = migration::dump(req);
    if (!dumped) {
      // CRIU resumes the tree when a dump fails; make sure no freeze of ours outlives it.
      (void)thaw_if_left_frozen(rec, was_paused);
      return failf("checkpoint of container {:?} failed, the container is left {}: {}", id,
                   compute_status(dir, rec), dumped.error().text());
    }
    // CRIU leaves a cgroup frozen as it found it: thaw what this function froze.
    if (frozen_here && o.leave_running)
      BH_CHECK(context(cgroups::thaw(*frozen_here), "checkpoint " + id + ": thawing after the dump"));
  } // the lock is released before delete takes it again
  if (o.leave_running || o.pre_dump)
    return {};
  log_debug(ro, fmt::format("checkpoint {}: dumped; deleting the container", id));
  return delete_container(ro, id, true);
}

namespace {

// The rootfs bound on <state dir>/criu-root: CRIU wants the root to be a mount point whose parent
// is not over-mounted.
Result<RestoreMount> bind_criu_root(const std::string &rootfs, const std::string &state_dir) {
  return RestoreMount::make(state_dir + "/criu-root", [&rootfs](const std::string &path) -> Status {
    if (::mount(rootfs.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return failf_errno("restore: bind-mounting rootfs {} on {}", rootfs, path);
    return {};
  });
}

// What the masked directories of a restored container bind (kMaskedDirKey): an empty read-only
// tmpfs of this container's own on <state dir>/criu-masked-dir (the container's binds keep it
// after it is detached). Its own, not one shared by every container: root in a privileged
// container can remount its masks writable.
Result<RestoreMount> mount_mask_source(const std::string &state_dir) {
  return RestoreMount::make(state_dir + "/criu-masked-dir", [](const std::string &path) -> Status {
    return context(rootfs::mount_directory_mask(path), "restore: the source of masked directories");
  });
}

// CRIU mounts onto the mount points it finds in the root and fails on a missing one ("Can't stat
// mountpoint"): a rootfs made anew for the restore (podman restore --import unpacks the image and
// the rootfs changes, which lack e.g. /run/.containerenv) has none of those create made. They are
// made as create makes them, except below a tmpfs, whose content CRIU restores from the images
// (runc does the same).
Status create_restore_mountpoints(const std::string &rootfs, const oci::Spec &spec,
                                  const std::string &bundle) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return failf_errno("rootfs {}", rootfs);
  auto below_tmpfs = [&spec](const std::string &dest) {
    for (const auto &m : spec.mounts)
      if (m.type == "tmpfs" && dest.size() > m.destination.size() && dest.starts_with(m.destination) &&
          (m.destination.back() == '/' || dest[m.destination.size()] == '/'))
        return true;
    return false;
  };
  for (const auto &m : spec.mounts) {
    if (below_tmpfs(m.destination))
      continue;
    auto kind = rootfs::TargetKind::Directory;
    if (rootfs::is_bind_mount(m)) {
      struct stat st {};
      if (::stat(rootfs::bind_source_path(m, bundle).c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
        kind = rootfs::TargetKind::File;
    }
    BH_TRY(context(rootfs::ensure_mount_target(root.get(), m.destination, kind),
                   fmt::format("restore: mount point {} in {}", m.destination, rootfs)));
  }
  return {};
}

// A network namespace with nothing in it (--empty-ns network), made by this single-threaded
// process: unshare, keep an fd, go back.
Result<UniqueFd> fresh_netns() {
  UniqueFd ours(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!ours)
    return failf_errno("--empty-ns network: opening /proc/self/ns/net");
  if (::unshare(CLONE_NEWNET) < 0)
    return failf_errno("--empty-ns network: unshare(CLONE_NEWNET)");
  UniqueFd fresh(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  int saved = errno;
  if (::setns(ours.get(), CLONE_NEWNET) < 0)
    return failf_errno("--empty-ns network: returning to the runtime's network namespace");
  if (!fresh)
    return fail("--empty-ns network: opening the new namespace", saved);
  return fresh;
}

} // namespace

Result<int> restore_container(const RuntimeOptions &ro, const std::string &id, const RestoreOptions &o,
                              RestoreFds fds) {
  BH_CHECK(oci::validate_container_id(id));
  auto cg_mode = BH_TRY(migration::parse_cgroup_mode(o.manage_cgroups_mode));
  unsigned empty_ns = BH_TRY(empty_ns_flags(o.empty_ns));
  std::string images = default_image_path(o.image_path);
  struct stat st {};
  if (::stat(images.c_str(), &st) < 0)
    return failf_errno("--image-path {}", images);
  if (!S_ISDIR(st.st_mode))
    return failf("--image-path {}: not a directory", images);
  if (::access((images + "/inventory.img").c_str(), F_OK) < 0)
    return failf("--image-path {}: no checkpoint there (no inventory.img)", images);
  char buf[4096];
  if (!::realpath(o.bundle.empty() ? "." : o.bundle.c_str(), buf))
    return failf_errno("bundle {}", o.bundle);
  std::string bundle = buf;
  std::string config_path = bundle + "/config.json";
  std::string config_text = BH_TRY(read_file(config_path));
  oci::Spec spec = BH_TRY(load_spec_text(config_text, config_path));
  if (spec.process->terminal && o.console_socket.empty() && fds.console_fd < 0 && o.detach)
    return fail("process.terminal is true: restore --detach needs --console-socket for the pty master");
  std::string root_path = spec.root.path[0] == '/' ? spec.root.path : bundle + "/" + spec.root.path;
  if (!::realpath(root_path.c_str(), buf))
    return failf_errno("root.path {}", root_path);
  std::string rootfs = buf;
  std::optional<RestoreScope> scope;
  if (ro.systemd_cgroup)
    scope.emplace(BH_TRY(RestoreScope::prepare(spec, id)));
  if (!o.work_path.empty())
    BH_CHECK(make_dir(o.work_path, "--work-path"));
  ::prctl(PR_SET_DUMPABLE, 0);

  // Foreground: as `run`, a subreaper that relays signals; blocked before the tree exists.
  if (!o.detach && !o.no_subreaper)
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t relay = foreground_signals(), old;
  if (!o.detach)
    ::sigprocmask(SIG_BLOCK, &relay, &old);

  StateStore store(ro.root);
  ContainerDir dir = BH_TRY(store.create(id));
  Revert revert;
  revert.add([&dir] { (void)dir.remove(); });

  ContainerRecord rec;
  rec.id = id;
  rec.bundle = bundle;
  rec.rootfs = rootfs;
  rec.created = now_rfc3339();
  rec.annotations = spec.annotations;
  rec.hooks = spec.hooks;
  rec.has_pid_namespace = find_namespace(spec, oci::NamespaceType::Pid) != nullptr;

  cgroups::Cgroup cgroup;
  if (scope) {
    cgroup = BH_TRY(scope->start(spec, id));
    revert.add([&scope] { scope->abandon(); });
    BH_CHECK(cgroups::setup_container_cgroup(cgroup, *spec.linux));
    rec.cgroup_driver = systemd_driver_name(scope->manager());
    rec.systemd_unit = scope->unit();
    rec.cgroup_mount = scope->mount();
    rec.cgroup_path = cgroup.path();
  } else if (auto mount = cgroups::cgroup2_mount()) {
    std::string path = BH_TRY(cgroups::resolve_path(spec.linux->cgroups_path, id));
    cgroup = BH_TRY(cgroups::Cgroup::create(*mount, path));
    revert.add([cgroup] { (void)cgroup.destroy(); });
    BH_CHECK(cgroups::setup_container_cgroup(cgroup, *spec.linux));
    rec.cgroup_mount = *mount;
    rec.cgroup_path = path;
  } else {
    log_warning(ro, fmt::format("container {}: {}; restoring without a cgroup", id, mount.error().text()));
  }
  BH_CHECK(dir.save_first(rec));
  BH_CHECK(write_file_at(dir.fd(), "config.json", config_text, O_WRONLY | O_CREAT | O_EXCL, 0600));

  migration::RestoreRequest req;
  req.images_dir = images;
  copy_shared_flags(o, cg_mode, req);
  req.cgroup_root = rec.cgroup_path;
  for (const auto &m : spec.mounts) {
    if (rootfs::is_bind_mount(m))
      req.ext_mounts.push_back({m.destination, rootfs::bind_source_path(m, bundle)});
    else if (mounts_host_cgroup(spec, m) && !rec.cgroup_path.empty())
      req.ext_mounts.push_back({m.destination, rec.cgroup_mount + rec.cgroup_path});
  }
  if (!spec.linux->masked_paths.empty())
    req.ext_mounts.push_back({"/dev/null", "/dev/null"});
  for (const auto &d : bound_devices(spec))
    req.ext_mounts.push_back({d, d});

  std::vector<UniqueFd> ns_fds;
  const oci::Namespace *net = find_namespace(spec, oci::NamespaceType::Network);
  // Images of a dump with CRIU in the tree's namespace: CRIU starts in the one the tree comes back
  // in (checkpoint_netns.hpp), which is otherwise handed to CRIU as an external one.
  const bool criu_in_tree_netns = criu_ran_in_tree_netns(images);
  int tree_netns = -1;
  if (net && net->path.empty() && (empty_ns & CLONE_NEWNET) && has_user_namespace(spec)) {
    // As the dump left it out: CRIU makes the namespace inside the tree's user namespace, so root
    // inside owns it; the caller may fill it before the tree's sockets come back.
    if (fds.netns_fd >= 0)
      return fail("restore: a container with its own user namespace gets its network namespace made by "
                  "CRIU inside it, not one made outside",
                  EINVAL);
    req.empty_ns |= CLONE_NEWNET;
    req.setup_namespaces = fds.setup_netns;
  } else if (net && fds.netns_fd >= 0) {
    tree_netns = fds.netns_fd;
  } else if (net && !net->path.empty()) {
    UniqueFd fd(::open(net->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
      return failf_errno("linux.namespaces: network namespace {}", net->path);
    tree_netns = fd.get();
    ns_fds.push_back(std::move(fd));
  } else if (net && (empty_ns & CLONE_NEWNET)) {
    UniqueFd fd = BH_TRY(fresh_netns());
    tree_netns = fd.get();
    ns_fds.push_back(std::move(fd));
  }
  if (criu_in_tree_netns && tree_netns < 0)
    return failf(
        "restore: the images in {} were dumped with CRIU in the container's network namespace, and "
        "the config gives the container none to come back in (a network namespace of its own, no user "
        "namespace)",
        images);
  if (tree_netns >= 0 && criu_in_tree_netns) {
    req.tree_in_criu_netns = true;
    req.criu_netns = tree_netns;
    req.tcp_established = false; // the dump saved none
  } else if (tree_netns >= 0) {
    req.inherit_fds.push_back({tree_netns, kNetKey});
  }
  const oci::Namespace *pidns = find_namespace(spec, oci::NamespaceType::Pid);
  if (pidns && !pidns->path.empty()) {
    UniqueFd fd(::open(pidns->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
      return failf_errno("linux.namespaces: pid namespace {}", pidns->path);
    req.inherit_fds.push_back({fd.get(), kPidKey});
    ns_fds.push_back(std::move(fd));
  }
  // The tree's stdio pipes lead to whoever ran the container; ours take their place.
  if (auto text = read_file(images + "/" + kDescriptors)) {
    auto fds = nlohmann::json::parse(*text, nullptr, false);
    if (fds.is_array())
      for (size_t i = 0; i < fds.size() && i < 3; ++i)
        if (fds[i].is_string() && fds[i].get<std::string>().find("pipe:") != std::string::npos)
          req.inherit_fds.push_back({static_cast<int>(i), fds[i].get<std::string>()});
  }

  UniqueFd console;
  if (spec.process->terminal && fds.console_fd >= 0) {
    console.reset(::fcntl(fds.console_fd, F_DUPFD_CLOEXEC, 3));
    if (!console)
      return failf_errno("restore: duplicating the console socket fd {}", fds.console_fd);
  } else if (spec.process->terminal && !o.console_socket.empty()) {
    console = BH_TRY(connect_console_socket(o.console_socket));
  }

  BH_CHECK(create_restore_mountpoints(rootfs, spec, bundle));
  RestoreMount criu_root = BH_TRY(bind_criu_root(rootfs, dir.path()));
  req.root = criu_root.path();
  std::optional<RestoreMount> masks;
  if (!spec.linux->masked_paths.empty()) {
    masks.emplace(BH_TRY(mount_mask_source(dir.path())));
    req.ext_mounts.push_back({kMaskedDirKey, masks->path()});
  }
  std::optional<TmpfsSources> tmpfs;
  {
    UniqueFd cgroup_dir;
    if (!rec.cgroup_path.empty())
      cgroup_dir = BH_TRY(cgroup.open_dir());
    tmpfs.emplace(BH_TRY(TmpfsSources::prepare(images, dir.path(), cgroup_dir ? cgroup_dir.get() : -1)));
    req.ext_mounts.insert(req.ext_mounts.end(), tmpfs->ext_mounts().begin(), tmpfs->ext_mounts().end());
  }
  std::optional<ImagesLent> lent;
  if (has_user_namespace(spec)) {
    auto root_ids = mapped_root(spec);
    if (!root_ids)
      return fail("restore: the config has a user namespace but no uid/gid mapping of id 0 inside", EINVAL);
    lent.emplace(BH_TRY(ImagesLent::lend(images, root_ids->first, root_ids->second)));
  }
  log_debug(ro, fmt::format("restore {}: from {} into cgroup {} ({} external mounts, {} inherited fds)", id,
                            images, rec.cgroup_path, req.ext_mounts.size(), req.inherit_fds.size()));
  auto result = migration::restore(req);
  criu_root.release(); // the restored tree has its own mount namespace by now
  masks.reset();
  tmpfs.reset();
  lent.reset(); // the tree has read what it needed
  migration::Restored restored = BH_TRY(std::move(result));
  pid_t pid = restored.pid;
  revert.add([pid, cgroup] {
    // Without a pid namespace the tree's other processes outlive init: the cgroup has them all.
    if (!cgroup.empty_path())
      (void)cgroup.signal_all(SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  });
  // The tree is in the scope's cgroup: the scope no longer needs its first pid.
  if (scope)
    scope->release_placeholder();
  // A tree dumped from a frozen cgroup (a paused container, or bulkheadd's checkpoint, which
  // pauses to copy the disk consistently) may come back frozen; a restored container runs.
  BH_CHECK(thaw_if_left_frozen(rec, false));
  auto stat = BH_TRY(read_proc_stat(pid));
  rec.init = ProcessId{pid, stat.start_time};
  rec.creating = false;
  BH_CHECK(dir.save(rec));
  if (!o.pid_file.empty())
    BH_CHECK(write_file_atomic(o.pid_file, std::to_string(pid)));
  UniqueFd master = std::move(restored.pts_master);
  if (spec.process->terminal && !master)
    return fail("restore: the container has a terminal, but CRIU sent no pty master (orphan-pts-master)");
  if (console && master) {
    BH_CHECK(send_fd(console.get(), master.get(), "/dev/ptmx", "the pty master to the console socket"));
    master.reset();
  }
  revert.commit();
  log_debug(ro, fmt::format("restore {}: running again as pid {}", id, pid));
  dir = ContainerDir{}; // unlock: state, kill and delete work from now on
  if (o.detach)
    return 0;

  auto status = wait_foreground(pid, std::move(master), relay);
  if (!status)
    return tl::unexpected(status.error());
  auto removed = delete_container(ro, id, true);
  if (!removed)
    log_warning(ro, removed.error().text());
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return exit_code(*status);
}

} // namespace bulkhead::runtime

namespace bulkhead {

Status Runtime::checkpoint(const std::string &id, const CheckpointOptions &options) {
  return runtime::checkpoint_container(options_, id, options);
}

Result<int> Runtime::restore(const std::string &id, const RestoreOptions &options) {
  return runtime::restore_container(options_, id, options);
}

} // namespace bulkhead
