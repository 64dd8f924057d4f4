// The standby's memory chain, flattened ahead of need (issue 14). A replica in memory mode is a
// chain of CRIU image directories (a full dump, then the pages changed since the one before);
// a long chain is made one directory again by copying the container's memory once
// (migration/criu_image_flatten.hpp). Done inside the begin of the set that needs it, that copy
// (2-3 s for 256 MiB under QEMU TCG) held up that set, so the source's next capture waited and the
// loss window of those rounds grew by it. Done here, it runs between sets:
//
// | when                                | what                                                      |
// |-------------------------------------|-----------------------------------------------------------|
// | a set committed with a chain of at  | hard links of its image directories into                  |
// | least kFlattenAheadChain, no job    | replicas/NAME/.flatten-work (under the replica's claim,   |
// | for this replica yet                | after the source's answer), then a thread flattens the    |
// |                                     | newest one there, at nice 10                              |
// | a later set's begin, the job done   | its flat directory's files hard-linked into the staging   |
// |                                     | copy in place of that directory (the same dump: the same  |
// |                                     | inventory.img inode), the older directories pruned        |
// | a begin whose chain reached         | waits for the job (an activation cancels it), then as     |
// | kMaxChain, the job still running    | above; no job or a failed one: the flattening in the      |
// |                                     | begin, as before                                          |
// | that set committed                  | the work directory goes; the next job starts when the     |
// |                                     | chain is long again                                       |
// | an activation, a drop, shutdown     | cancelled (seen between two 8 MiB copies), joined, its    |
// |                                     | work directory removed (at start, the sweep removes any)  |
// The job touches only its work directory: a set arriving meanwhile and an activation read the
// current set, never the work. Its result is a directory of hard links and new pages files, so
// adopting it costs a few links, whatever the container's memory.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include "bulkhead/io.hpp"
#include "daemon/replica_flattening.hpp"
#include "daemon/replication_state.hpp"
#include "migration/criu_image_flatten.hpp"
#include "storage/tree.hpp"

namespace bulkhead::daemon {

void Daemon::ReplicaFlattening::finish(Status r) {
  {
    std::lock_guard lock(mu_);
    result_ = std::move(r);
    done_ = true;
  }
  cv_.notify_all();
}

bool Daemon::ReplicaFlattening::done() {
  std::lock_guard lock(mu_);
  return done_;
}

Status Daemon::ReplicaFlattening::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  return result_;
}

Daemon::ReplicaFlattening::~ReplicaFlattening() {
  cancel = true;
  if (thread.joinable())
    thread.join();
}

void Daemon::flatten_replica_ahead(const std::string &name, const std::string &set_images,
                                   const std::string &images, int chain) {
  if (images.empty() || chain < replication::kFlattenAheadChain)
    return;
  {
    std::lock_guard lock(replica_mu_);
    if (replica_flattening_.count(name) || stopping_)
      return; // one at a time: a later begin adopts or discards it
  }
  auto job = std::make_shared<ReplicaFlattening>();
  job->name = name;
  job->images = images;
  job->work = replica_dir(name) + "/.flatten-work";
  job->length = chain;
  auto linked = [&]() -> Status {
    (void)remove_tree(job->work);
    if (::mkdir(job->work.c_str(), 0700) < 0)
      return failf_errno("creating {}", job->work);
    UniqueFd from = BH_TRY(open_directory(set_images));
    UniqueFd to = BH_TRY(open_directory(job->work));
    return migration::link_image_dirs(from.get(), to.get(), set_images);
  }();
  if (!linked) {
    fmt::print(stderr, "bulkheadd: replica {}: not flattening ahead: {}\n", name, linked.error().text());
    (void)remove_tree(job->work);
    return;
  }
  ReplicaFlattening *raw = job.get(); // outlives the thread: its destructor joins it
  job->thread = std::thread([raw] {
    // The copy of a container's memory yields to everything else on this host (the containers,
    // a source's dump in a test bed that shares the CPUs): it only has to be ready in a few sets.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    const int64_t t0 = replication::steady_ms();
    Status r = [&]() -> Status {
      UniqueFd root = BH_TRY(open_directory(raw->work));
      return migration::flatten_image_chain(root.get(), raw->images, &raw->cancel);
    }();
    const int64_t ms = replication::steady_ms() - t0;
    if (r)
      fmt::print(stderr,
                 "bulkheadd: replica {}: flattened {} (a chain of {} image directories) ahead, in the "
                 "background, in {} ms\n",
                 raw->name, raw->images, raw->length, ms);
    else if (r.error().code != ECANCELED)
      fmt::print(stderr, "bulkheadd: replica {}: flattening {} ahead failed: {}\n", raw->name, raw->images,
                 r.error().text());
    raw->finish(std::move(r));
  });
  std::lock_guard lock(replica_mu_);
  replica_flattening_[name] = std::move(job);
}

Result<bool> Daemon::adopt_flattened_ahead(const std::string &name, int imgroot_fd, const std::string &top,
                                           int length, int64_t *waited_ms) {
  std::shared_ptr<ReplicaFlattening> job;
  {
    std::lock_guard lock(replica_mu_);
    if (auto it = replica_flattening_.find(name); it != replica_flattening_.end())
      job = it->second;
  }
  if (!job || (!job->done() && length < replication::kMaxChain))
    return false; // the chain can wait for it
  const int64_t t0 = replication::steady_ms();
  Status r = job->wait();
  if (waited_ms)
    *waited_ms = replication::steady_ms() - t0;
  if (!r && r.error().code == ECANCELED && job->cancel)
    return fail(fmt::format("replica {}: the set was cut while its chain was being flattened (an activation "
                            "or a drop)",
                            name),
                ECANCELED);
  if (r) {
    auto flat = open_directory(job->work + "/" + job->images);
    if (flat)
      r = migration::adopt_flat_copy(imgroot_fd, job->images, flat->get());
    else
      r = tl::unexpected(flat.error());
  }
  if (!r) {
    // Another chain since (a full set), or a failure: this job is of no use.
    fmt::print(stderr, "bulkheadd: replica {}: not using the flattening of {} made ahead: {}\n", name,
               job->images, r.error().text());
    discard_replica_flattening(name);
    return false;
  }
  BH_TRY(migration::prune_image_dirs(imgroot_fd, top));
  return true;
}

void Daemon::cancel_replica_flattening(const std::string &name) {
  std::lock_guard lock(replica_mu_);
  if (auto it = replica_flattening_.find(name); it != replica_flattening_.end())
    it->second->cancel = true;
}

void Daemon::discard_replica_flattening(const std::string &name) {
  std::shared_ptr<ReplicaFlattening> job;
  {
    std::lock_guard lock(replica_mu_);
    if (auto it = replica_flattening_.find(name); it != replica_flattening_.end()) {
      job = std::move(it->second);
      replica_flattening_.erase(it);
    }
  }
  if (!job)
    return;
  job->cancel = true;
  (void)job->wait();
  (void)remove_tree(job->work);
}

void Daemon::stop_replica_flattenings() {
  std::map<std::string, std::shared_ptr<ReplicaFlattening>> jobs;
  {
    std::lock_guard lock(replica_mu_);
    jobs.swap(replica_flattening_);
  }
  for (auto &[name, job] : jobs)
    job->cancel = true;
  jobs.clear(); // joined; their work directories go with the next start's sweep
}

} // namespace bulkhead::daemon
