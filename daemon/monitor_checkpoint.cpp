#include "daemon/monitor_checkpoint.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "bulkhead/io.hpp"
#include "daemon/monitor_io.hpp"
#include "runtime/container.hpp"

namespace bulkhead::daemon {

using json = nlohmann::json;

namespace {

Status checked_images(const std::string &images, CheckpointRequest &r) {
  if (images.empty() || images[0] != '/')
    return failf("checkpoint: \"images\" must be an absolute path, not {:?}", images);
  struct stat st {};
  if (::lstat(images.c_str(), &st) < 0)
    return failf_errno("checkpoint: images directory {}", images);
  if (!S_ISDIR(st.st_mode))
    return failf("checkpoint: images {}: not a directory", images);
  r.images = images;
  return {};
}

// PDIR relative to the images (or absolute), an existing directory.
Status checked_parent(const std::string &parent, CheckpointRequest &r) {
  std::string where = parent[0] == '/' ? parent : r.images + "/" + parent;
  struct stat st {};
  if (::stat(where.c_str(), &st) < 0)
    return failf_errno("checkpoint: parent images {}", where);
  if (!S_ISDIR(st.st_mode))
    return failf("checkpoint: parent images {}: not a directory", where);
  r.parent = parent;
  return {};
}

// The worker's steps in ms from the daemon's go (the freeze): the runtime's log lines (its tmpfs
// copy, the CRIU request) and the end. Where a replication round's pause goes outside CRIU's own
// dump.log; bench/failover prints the last rounds'. Written with the images, before the answer (a
// small file: a millisecond of the pause).
class WorkerSteps {
public:
  void start() {
    start_ = now_ms();
    lines_.clear();
  }
  void note(const std::string &what) { lines_.push_back(fmt::format("{} {}", now_ms() - start_, what)); }
  void write(const std::string &images) const {
    if (start_ == 0 || images.empty())
      return;
    std::string text;
    for (const auto &l : lines_)
      text += l + "\n";
    (void)write_file_atomic(images + "/worker-steps.txt", text, 0600);
  }

private:
  static int64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
  }
  int64_t start_ = 0;
  std::vector<std::string> lines_;
};

} // namespace

Result<CheckpointRequest> checkpoint_request_from_json(const json &j) {
  for (const auto &[k, v] : j.items())
    if (k != "op" && k != "images" && k != "stop" && k != "pre_dump" && k != "parent" && k != "wait_for_go")
      return failf("checkpoint: unknown key {:?}", k);
  if (!j.contains("images") || !j["images"].is_string())
    return fail("checkpoint: \"images\" (an absolute directory) is required");
  CheckpointRequest r;
  BH_CHECK(checked_images(j["images"].get<std::string>(), r));
  if (j.contains("stop")) {
    if (!j["stop"].is_boolean())
      return fail("checkpoint: \"stop\" must be true or false");
    r.stop = j["stop"].get<bool>();
  }
  if (j.contains("pre_dump")) {
    if (!j["pre_dump"].is_boolean())
      return fail("checkpoint: \"pre_dump\" must be true or false");
    r.pre_dump = j["pre_dump"].get<bool>();
  }
  if (j.contains("wait_for_go")) {
    if (!j["wait_for_go"].is_boolean())
      return fail("checkpoint: \"wait_for_go\" must be true or false");
    r.wait_for_go = j["wait_for_go"].get<bool>();
  }
  if (r.wait_for_go && r.pre_dump)
    return fail("checkpoint: a pre-dump does not wait for a go (CRIU freezes the tree itself)");
  if (r.pre_dump && r.stop)
    return fail("checkpoint: a pre-dump leaves the container running; \"stop\" does not go with it");
  if (j.contains("parent")) {
    if (!j["parent"].is_string() || j["parent"].get<std::string>().empty())
      return fail("checkpoint: \"parent\" must be a directory (relative to \"images\")");
    BH_CHECK(checked_parent(j["parent"].get<std::string>(), r));
  }
  return r;
}

Status images_from_go(const json &go, CheckpointRequest &r) {
  for (const auto &[k, v] : go.items())
    if (k != "op" && k != "images" && k != "parent")
      return failf("checkpoint: unknown key {:?} in the go", k);
  if (go.contains("images")) {
    if (!go["images"].is_string())
      return fail("checkpoint: the go's \"images\" must be an absolute directory");
    BH_CHECK(checked_images(go["images"].get<std::string>(), r));
  }
  if (go.contains("parent")) {
    if (!go["parent"].is_string())
      return fail("checkpoint: the go's \"parent\" must be a directory (relative to \"images\") or \"\"");
    r.parent.clear();
    if (!go["parent"].get<std::string>().empty())
      BH_CHECK(checked_parent(go["parent"].get<std::string>(), r));
  }
  return {};
}

namespace {

void shared_system_options(CriuOptions &o, const std::string &images, const std::string &work_dir) {
  o.image_path = images;
  o.work_path = work_dir;
  o.tcp_established = true;
  o.file_locks = true;
  o.manage_cgroups_mode = "soft";
  o.empty_ns = {"network"};
}

} // namespace

CheckpointOptions system_checkpoint_options(const CheckpointRequest &r, const std::string &work_dir) {
  CheckpointOptions o;
  shared_system_options(o, r.images, work_dir);
  o.leave_running = !r.stop;
  o.pre_dump = r.pre_dump;
  // Not CRIU's tar and gzip per tmpfs mount inside the freeze: the daemon's images are restored
  // by bulkhead only.
  o.tmpfs_by_runtime = true;
  // A container without TCP connections is dumped (leaving it running) with CRIU in its network
  // namespace: no network lock in the freeze (runtime/checkpoint_netns.hpp).
  o.skip_idle_network_lock = true;
  // CRIU links <images>/parent to this path and reads unchanged pages through it at restore.
  o.parent_path = r.parent;
  return o;
}

RestoreOptions system_restore_options(const std::string &images, const std::string &bundle,
                                      const std::string &work_dir) {
  RestoreOptions o;
  shared_system_options(o, images, work_dir);
  o.bundle = bundle;
  o.detach = true;
  return o;
}

Result<pid_t> spawn_checkpoint_worker(const WatchState &w, const CheckpointRequest &r, int conn) {
  pid_t pid = ::fork();
  if (pid < 0)
    return failf_errno("fork of the checkpoint worker");
  if (pid > 0)
    return pid;

  // Worker: the connection on fd 3, /dev/null on 0-2 is what the monitor has there already;
  // nothing else of the monitor's (pty, listener, clients) stays open for CRIU to see.
  int high = ::fcntl(conn, F_DUPFD_CLOEXEC, 64);
  if (high < 0 || ::dup2(high, 3) < 0)
    ::_exit(127);
  ::syscall(SYS_close_range, 4, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGCHLD, SIG_DFL);
  RuntimeOptions ro;
  ro.root = w.oci_root;
  // CRIU's dump.log stays with the images: a failed restore is read with it.
  CheckpointOptions o = system_checkpoint_options(r, r.images);
  auto steps = std::make_shared<WorkerSteps>();
  auto images = std::make_shared<std::string>(r.images);
  ro.log = [steps](LogLevel, const std::string &m) { steps->note(m); };
  if (r.wait_for_go)
    o.before_dump = [req = CheckpointRequest(r), steps, images](CheckpointOptions &opts) mutable -> Status {
      BH_CHECK(send_line(3, json{{"ready", true}}.dump()));
      auto line = read_line(3, 8192);
      if (!line)
        return fail("the daemon left before the checkpoint's go: " + line.error().text(), ECANCELED);
      json go = json::parse(*line, nullptr, false);
      if (!go.is_object() || go.value("op", "") != "go")
        return failf("checkpoint: expected {{\"op\":\"go\"}}, not {:?}", *line);
      steps->start();
      BH_CHECK(images_from_go(go, req));
      *images = req.images;
      CheckpointOptions named = system_checkpoint_options(req, req.images);
      opts.image_path = named.image_path;
      opts.work_path = named.work_path;
      opts.parent_path = named.parent_path;
      return {};
    };
  auto done = runtime::checkpoint_container(ro, w.name, o);
  steps->note(done ? "dumped" : "failed");
  // Before the answer: the daemon exports the images once it has it.
  if (done && !r.stop)
    steps->write(*images);
  json reply = done ? json{{"ok", true}} : json{{"error", done.error().text()}};
  (void)send_line(3, reply.dump());
  ::_exit(done ? 0 : 1);
}

} // namespace bulkhead::daemon
