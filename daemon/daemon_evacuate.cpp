// Evacuation of a host (docs/migration.md "Evacuating a host"): `bulkheadctl host evacuate REMOTE`
// moves every container of this daemon to a paired remote, OpenVZ's "evacuate before maintenance";
// in a cluster, `host evacuate` without REMOTE spreads them over the cluster's online hosts this one
// is paired with (daemon/evacuation_plan.hpp), and each migration hands its placement over.
// Each container goes through Daemon::migrate (daemon_migrate.cpp), as its own operation with its
// own guarantee (a container that fails to move runs on here as before); this file plans, runs at
// most `parallel` of them at once and gathers their results in one operation.
//
// Threads: the evacuation is an operation (its own thread, daemon/operations.cpp) and so is each
// migration it starts; it polls them. The daemon never forks for it.
//
// | step | what                                                                                   |
// |------|----------------------------------------------------------------------------------------|
// | 1    | evacuate(): the request is checked; unless dry_run the host's state becomes evacuating: |
// |      | create, start, restart, import, restore and incoming migrations are refused (EBUSY)    |
// | 2    | the operation waits for creates already past their check, lists the containers (in a  |
// |      | cluster without REMOTE: picks each one's host from etcd's view), and asks each remote  |
// |      | migrate.check for its containers over one connection (dry_run: that is all)            |
// | 3    | refused ones fail at once (nothing of them changed); the others migrate, at most        |
// |      | `parallel` at once; a container starting or stopping is retried for up to a minute     |
// | 4    | the state goes back to normal; the operation fails naming each container not moved    |
//
// `cluster rebalance` runs the same steps for the containers plan_rebalance picks (stopped ones
// first), without step 1's evacuating state: the host goes on creating and starting meanwhile.
//
// Containers whose template the remote lacks move one per template until one of them has arrived
// (it brings the template along): two imports of one template on the target would collide.
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <fmt/core.h>
#include <fmt/format.h>

#include "daemon/cluster_member.hpp"
#include "daemon/daemon.hpp"
#include "daemon/evacuation_plan.hpp"
#include "daemon/request_fields.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr int kMaxParallel = 8;
constexpr int kConnectTimeoutS = 10;
constexpr int kCheckTimeoutS = 300; // hashing a large template on the remote takes a while
// A container that is starting or stopping when its turn comes is asked again for this long.
constexpr int64_t kBusyRetryMs = 60'000;
constexpr int kPollMs = 200;

struct Item {
  std::string name, state, mode, template_name;
  std::string remote; // where it goes
  ContainerConfig config;
  // "" while pending; moved, failed, skipped; a dry run's would-move or refused.
  std::string result, error;
  int64_t downtime_ms = 0;
  uint64_t bytes = 0;
  bool template_present = true; // on the remote, as its migrate.check answered
  bool template_sent = false;
  bool sending_template = false;
  std::shared_ptr<Operation> op;
  int64_t first_busy_ms = 0, retry_at_ms = 0;
};

json item_json(const Item &i, bool dry_run) {
  json j = {{"name", i.name},
            {"remote", i.remote},
            {"state", i.state},
            {"mode", i.mode},
            {"template", i.template_name},
            {"result", i.result.empty() ? (i.op ? "moving" : "pending") : i.result},
            {"error", i.error},
            {"template_sent", i.template_sent}};
  if (!dry_run) {
    j["downtime_ms"] = i.downtime_ms;
    j["bytes"] = i.bytes;
    j["operation"] = i.op ? json(i.op->id()) : json(nullptr);
  }
  return j;
}

// The remote's refusals come as "ADDR: message" (PeerConnection::request); the results name the
// remote once, in the operation's metadata.
std::string from_remote(const Error &e, const std::string &address) {
  std::string m = e.message;
  if (m.rfind(address + ": ", 0) == 0)
    m.erase(0, address.size() + 2);
  return m;
}

} // namespace

Status Daemon::refuse_while_evacuating(const std::string &what) {
  if (!evacuating_)
    return {};
  std::lock_guard lock(evac_mu_);
  if (!evacuating_)
    return {};
  return fail(fmt::format("{}: refused, host is being evacuated ({} to {}, operation {}): it creates "
                          "and starts no container until that ends",
                          what, options_.host_name,
                          evacuation_.remote.empty() ? "the cluster" : "remote " + evacuation_.remote,
                          evacuation_.operation),
              EBUSY);
}

json Daemon::host_info() {
  size_t containers = 0;
  {
    std::lock_guard lock(table_mu_);
    containers = entries_.size();
  }
  json j = {{"host_name", options_.host_name},
            {"containers", containers},
            {"cgroups", {{"driver", cgroups_.driver()}, {"parent", cgroup_parent_text()}}},
            {"evacuation", nullptr}};
  std::lock_guard lock(evac_mu_);
  j["state"] = evacuating_ ? "evacuating" : "normal";
  if (evacuating_) {
    json e = {{"operation", evacuation_.operation},
              {"remote", evacuation_.remote},
              {"parallel", evacuation_.parallel},
              {"mode", evacuation_.mode.empty() ? json(nullptr) : json(evacuation_.mode)},
              {"started_at", evacuation_.started_ms / 1000}};
    if (auto op = operations_.find(evacuation_.operation)) {
      auto progress = op->to_json()["progress"];
      e["done"] = progress["done"];
      e["total"] = progress["total"];
      e["stage"] = progress["stage"];
    }
    j["evacuation"] = e;
  }
  return j;
}

namespace {

// The fields an evacuation and a rebalance share: "mode", "parallel", "dry_run".
struct MoveOptions {
  std::string mode;
  int parallel = 1;
  bool dry_run = false;
};

Result<MoveOptions> move_options(const json &req) {
  MoveOptions o;
  o.mode = BH_TRY(string_field(req, "mode", false));
  if (!o.mode.empty() && o.mode != "cold" && o.mode != "live")
    return fail("\"mode\" must be \"cold\" or \"live\" (got \"" + o.mode + "\")", EINVAL);
  if (req.contains("parallel")) {
    const json &p = req["parallel"];
    if (!p.is_number_integer() || p.get<int64_t>() < 1 || p.get<int64_t>() > kMaxParallel)
      return fail(
          fmt::format("\"parallel\" must be a whole number from 1 to {} (got {})", kMaxParallel, p.dump()),
          EINVAL);
    o.parallel = p.get<int>();
  }
  if (req.contains("dry_run")) {
    if (!req["dry_run"].is_boolean())
      return fail("\"dry_run\" must be true or false", EINVAL);
    o.dry_run = req["dry_run"].get<bool>();
  }
  return o;
}

} // namespace

Result<std::shared_ptr<Operation>> Daemon::rebalance(const json &req) {
  BH_CHECK(known_fields(req, {"parallel", "mode", "dry_run"}, "rebalance"));
  auto o = BH_TRY(move_options(req));
  if (!cluster_)
    return fail("this host is in no cluster (bulkheadd --cluster): there is nothing to rebalance over",
                EINVAL);
  BH_CHECK(refuse_while_evacuating("rebalancing"));
  if (o.dry_run)
    return operations_.start(
        "Checking a rebalance of " + options_.host_name, "/1.0/host",
        [this, o](Operation &op) { return evacuate_work("", o.parallel, o.mode, true, op, true); });
  if (rebalancing_.exchange(true))
    return fail(fmt::format("host {} is being rebalanced already", options_.host_name), EBUSY);
  auto op = operations_.start("Rebalancing " + options_.host_name + " over the cluster's hosts", "/1.0/host",
                              [this, o](Operation &op) {
                                auto r = evacuate_work("", o.parallel, o.mode, false, op, true);
                                rebalancing_ = false;
                                return r;
                              });
  return op;
}

Result<std::shared_ptr<Operation>> Daemon::evacuate(const json &req) {
  BH_CHECK(known_fields(req, {"remote", "parallel", "mode", "dry_run"}, "evacuate"));
  // Without a remote, in a cluster: each container goes to a host the cluster picks.
  std::string remote = BH_TRY(string_field(req, "remote", false));
  auto o = BH_TRY(move_options(req));
  const std::string mode = o.mode;
  const int parallel = o.parallel;
  const bool dry_run = o.dry_run;
  if (remote.empty() && !cluster_)
    return fail("\"remote\" is required: this host is in no cluster (bulkheadd --cluster), so there is no "
                "one to pick the hosts",
                EINVAL);
  if (!remote.empty() && !peer_remote(remote))
    return fail("no remote named \"" + remote +
                    "\" (bulkheadctl remote list shows them, remote add pairs one; in a cluster, any host "
                    "that joined its trust by `cluster join`)",
                ENOENT);
  const std::string to = remote.empty() ? "the cluster's hosts" : remote;
  if (dry_run)
    return operations_.start("Checking an evacuation of " + options_.host_name + " to " + to, "/1.0/host",
                             [this, remote, parallel, mode](Operation &op) {
                               return evacuate_work(remote, parallel, mode, true, op);
                             });
  // The flag is set here, before the answer, so a create sent after it is refused.
  std::lock_guard lock(evac_mu_);
  if (evacuating_)
    return fail(fmt::format("host {} is being evacuated already (to {}, operation {})", options_.host_name,
                            evacuation_.remote.empty() ? "the cluster" : evacuation_.remote,
                            evacuation_.operation),
                EBUSY);
  evacuating_ = true;
  evacuation_ = Evacuation{"", remote, mode, parallel, now_unix_ms()};
  // The work clears the flag under evac_mu_, so it cannot end before the id is recorded here.
  auto op = operations_.start("Evacuating " + options_.host_name + " to " + to, "/1.0/host",
                              [this, remote, parallel, mode](Operation &op) {
                                return evacuate_work(remote, parallel, mode, false, op);
                              });
  evacuation_.operation = op->id();
  events_.publish("host-evacuating", options_.host_name, {{"remote", remote}, {"operation", op->id()}});
  return op;
}

Status Daemon::evacuate_work(const std::string &remote_name, int parallel, const std::string &mode,
                             bool dry_run, Operation &op, bool rebalance) {
  // Back to normal before the operation reads as done, whatever happens below.
  struct EndEvacuation {
    Daemon &d;
    bool active;
    ~EndEvacuation() {
      if (!active)
        return;
      std::lock_guard lock(d.evac_mu_);
      d.evacuating_ = false;
      d.evacuation_ = Evacuation{};
    }
  } end{*this, !dry_run && !rebalance};
  if (!dry_run && !rebalance)
    while (creating_ > 0) // creates that passed their check before the flag: their containers count
      std::this_thread::sleep_for(std::chrono::milliseconds(10));

  const bool by_cluster = remote_name.empty();
  std::optional<Remote> named;
  if (!by_cluster)
    named = BH_TRY(peer_remote(remote_name));
  const std::string where = by_cluster ? std::string("the cluster's hosts")
                                       : fmt::format("remote {} ({})", named->name, named->address);
  const std::string what =
      rebalance ? fmt::format("{} {} over the cluster's hosts",
                              dry_run ? "checking a rebalance of" : "rebalancing", options_.host_name)
                : fmt::format("{} {} to {}", dry_run ? "checking an evacuation of" : "evacuating",
                              options_.host_name, where);

  std::vector<EntryPtr> all;
  {
    std::lock_guard lock(table_mu_);
    for (auto &[name, e] : entries_)
      all.push_back(e);
  }
  std::vector<Item> items;
  items.reserve(all.size());
  for (auto &e : all) {
    std::lock_guard lock(e->mu);
    Item i;
    i.config = e->rec.config;
    i.name = i.config.name;
    i.template_name = i.config.template_name;
    i.state = e->rec.status.state;
    bool running = e->watch_fd && i.state == "running";
    i.mode = running && mode != "cold" ? "live" : "cold";
    i.remote = remote_name;
    if (rebalance && i.state == "frozen")
      continue; // stays: a rebalance moves only what moves as it is
    if (i.state == "frozen") {
      // migrate would move it stopped (its processes die): the owner decides.
      i.result = dry_run ? "refused" : "failed";
      i.error = fmt::format("container {} is frozen: unfreeze it first (or move it with migrate)", i.name);
    }
    items.push_back(std::move(i));
  }
  if (by_cluster && !items.empty()) {
    // etcd's view at this moment: which hosts are online, and how many containers each runs.
    op.set_progress("reading the cluster", 0, items.size());
    auto view = cluster_view(cluster_->client(), options_.host_name);
    if (!view)
      return fail(fmt::format("{}: reading the cluster from etcd: {} (nothing was moved)", what,
                              view.error().message),
                  view.error().code);
    std::vector<std::string> names;
    for (const auto &i : items)
      if (i.result.empty() && (!rebalance || i.state != "running"))
        names.push_back(i.name);
    if (rebalance) // stopped ones first: they move cold, with no downtime
      for (const auto &i : items)
        if (i.result.empty() && i.state == "running")
          names.push_back(i.name);
    auto reachable = [this](const std::string &h) { return !!peer_remote(h); };
    auto plan = rebalance ? plan_rebalance(names, *view, options_.host_name, reachable)
                          : plan_cluster_evacuation(names, *view, options_.host_name, reachable);
    if (rebalance) { // only the planned ones move, in the plan's order; the others stay
      std::map<std::string, Item> picked;
      for (auto &i : items)
        picked.emplace(i.name, std::move(i));
      items.clear();
      for (const auto &t : plan)
        items.push_back(std::move(picked.at(t.name)));
    }
    std::map<std::string, EvacuationTarget> by_name;
    for (auto &t : plan)
      by_name[t.name] = std::move(t);
    for (auto &i : items) {
      auto it = by_name.find(i.name);
      if (it == by_name.end())
        continue;
      i.remote = it->second.remote;
      if (i.remote.empty()) {
        i.result = dry_run ? "refused" : "failed";
        i.error = it->second.error;
      }
    }
  }
  // The remotes the items go to, each looked up once.
  std::map<std::string, Remote> remotes;
  for (const auto &i : items)
    if (!i.remote.empty() && !remotes.count(i.remote)) {
      auto r = peer_remote(i.remote);
      if (!r)
        return fail(fmt::format("{}: remote {}: {} (nothing was moved)", what, i.remote, r.error().message),
                    r.error().code);
      remotes.emplace(i.remote, std::move(*r));
    }
  auto publish = [&] {
    json list = json::array();
    int moved = 0, failed = 0, skipped = 0, would = 0, refused = 0;
    for (const auto &i : items) {
      list.push_back(item_json(i, dry_run));
      moved += i.result == "moved";
      failed += i.result == "failed";
      skipped += i.result == "skipped";
      would += i.result == "would-move";
      refused += i.result == "refused";
    }
    json m = {{"host", options_.host_name},
              {"remote", by_cluster ? std::string() : named->name},
              {"address", by_cluster ? std::string() : named->address},
              {"by_cluster", by_cluster},
              {"rebalance", rebalance},
              {"parallel", parallel},
              {"mode", mode.empty() ? json(nullptr) : json(mode)},
              {"dry_run", dry_run},
              {"containers", list}};
    if (dry_run) {
      m["would_move"] = would;
      m["refused"] = refused;
    } else {
      m["moved"] = moved;
      m["failed"] = failed;
      m["skipped"] = skipped;
    }
    op.set_metadata(m);
  };
  publish();
  if (items.empty())
    return {};

  // Step 2: each remote's verdict on its containers, before anything changes here.
  {
    std::map<std::string, std::string> digests;
    size_t checked = 0;
    for (const auto &[rname, remote] : remotes) {
      op.set_progress("connecting to " + rname, checked, items.size());
      auto conn = connect_remote(remote, *identity_, kConnectTimeoutS);
      if (!conn)
        return fail(fmt::format("{}: cannot reach remote {} ({}): {} (nothing was moved)", what, rname,
                                remote.address, conn.error().message),
                    conn.error().code);
      conn->set_timeout(kCheckTimeoutS);
      for (auto &i : items) {
        if (i.remote != rname || !i.result.empty())
          continue;
        if (op.cancelled())
          return fail("cancelled (nothing was moved)", ECANCELED);
        op.set_progress("checking on " + rname, checked++, items.size());
        auto check =
            migrate_check_request(i.name, i.config, op, &digests, i.mode == "live").and_then([&](json req) {
              return conn->request(req);
            });
        if (!check) {
          i.result = dry_run ? "refused" : "failed";
          i.error = from_remote(check.error(), remote.address);
          continue;
        }
        i.template_present = check->header.value("template_present", false);
        i.template_sent = !i.template_present;
        if (dry_run)
          i.result = "would-move";
      }
    }
  }
  publish();
  if (dry_run)
    return {};

  // Step 3.
  std::set<std::string> on_target, sending;
  std::vector<Item *> queue, inflight;
  for (auto &i : items) {
    if (!i.result.empty())
      continue;
    queue.push_back(&i);
    if (i.template_present)
      on_target.insert(i.remote + "/" + i.template_name);
  }
  const size_t total = items.size();
  size_t finished = total - queue.size();
  bool cancel_sent = false;
  while (!queue.empty() || !inflight.empty()) {
    if (op.cancelled() && !cancel_sent) {
      cancel_sent = true;
      for (auto *i : inflight)
        (void)operations_.cancel(i->op->id());
      for (auto *i : queue) {
        i->result = "skipped";
        i->error = "the evacuation was cancelled before its turn";
        ++finished;
      }
      queue.clear();
    }
    int64_t now = now_unix_ms();
    for (auto it = queue.begin(); it != queue.end() && inflight.size() < static_cast<size_t>(parallel);) {
      Item &i = **it;
      const std::string tkey = i.remote + "/" + i.template_name; // a template arrives once per host
      bool needs_template = !on_target.count(tkey);
      if ((needs_template && sending.count(tkey)) || i.retry_at_ms > now) {
        ++it;
        continue;
      }
      // Without a mode asked for, migrate picks by the state at this moment (live when running).
      json mreq = {{"remote", i.remote}};
      if (!mode.empty())
        mreq["mode"] = i.mode;
      auto started = migrate(i.name, mreq);
      if (!started) {
        const Error &err = started.error();
        if (err.code == EBUSY) { // starting or stopping: asked again a second later
          if (!i.first_busy_ms)
            i.first_busy_ms = now;
          if (now - i.first_busy_ms < kBusyRetryMs) {
            i.retry_at_ms = now + 1000;
            ++it;
            continue;
          }
        }
        i.result = err.code == ENOENT && !find(i.name) ? "skipped" : "failed";
        i.error = err.code == ENOENT && !find(i.name) ? "removed here before its turn" : err.message;
        ++finished;
        it = queue.erase(it);
        continue;
      }
      i.op = *started;
      if (needs_template) {
        sending.insert(tkey);
        i.sending_template = true;
      }
      inflight.push_back(&i);
      it = queue.erase(it);
    }
    bool any = false;
    for (auto it = inflight.begin(); it != inflight.end();) {
      Item &i = **it;
      if (!i.op->done()) {
        ++it;
        continue;
      }
      json j = i.op->to_json();
      if (i.sending_template)
        sending.erase(i.remote + "/" + i.template_name);
      if (j.value("status", "") == "success") {
        const json &m = j["metadata"];
        i.result = "moved";
        i.mode = m.value("mode", i.mode);
        i.downtime_ms = m.value("downtime_ms", int64_t{0});
        i.bytes = m.value("bytes", uint64_t{0});
        i.template_sent = m.value("template_sent", false);
        on_target.insert(i.remote + "/" + i.template_name);
      } else {
        i.result = "failed";
        i.error = j.value("error", std::string());
        if (i.error.empty())
          i.error = j.value("status", std::string("failed"));
      }
      ++finished;
      any = true;
      it = inflight.erase(it);
    }
    std::vector<std::string> moving;
    for (auto *i : inflight)
      moving.push_back(i->name);
    op.set_progress(moving.empty() ? std::string("waiting")
                                   : "moving " + fmt::format("{}", fmt::join(moving, ", ")),
                    finished, total);
    publish();
    if (any)
      continue;
    if (!inflight.empty())
      inflight.front()->op->wait(kPollMs);
    else if (!queue.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  publish();

  // Step 4.
  std::vector<std::string> stayed;
  for (const auto &i : items)
    if (i.result != "moved")
      stayed.push_back(fmt::format("{} ({})", i.name, i.error.empty() ? i.result : i.error));
  events_.publish(rebalance ? "host-rebalanced" : "host-evacuated", options_.host_name,
                  {{"remote", remote_name}, {"moved", total - stayed.size()}, {"not_moved", stayed.size()}});
  if (!stayed.empty())
    return fail(fmt::format("{}: {} of {} containers did not move and stay here: {}", what, stayed.size(),
                            total, fmt::join(stayed, "; ")));
  return {};
}

} // namespace bulkhead::daemon
