// The daemon's side of the cluster's placement (issue 14, docs/cluster.md "Fencing"): joining at
// start, fencing the containers whose placement names another host (at start, before anything is
// re-adopted or started, and later when the cluster thread sees a placement move away), and the
// placement's claim and release by create and destroy.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

Status Daemon::join_cluster() {
  // After init_peers(): the host name is resolved. Before re-adoption: nothing of this host may run
  // or start until the placements were read (a host back after a failover must not run its copies).
  auto client = BH_TRY(cluster::EtcdClient::create(options_.cluster));
  cluster_ = std::make_unique<ClusterMember>(
      std::move(client), options_.host_name, options_.listen, options_.cluster_ttl_s,
      [this] { return cluster_states(); },
      [this] { return std::string(evacuating_ ? "evacuating" : "online"); });
  // Registered before the placements are read: a leader's failover write requires this host's key
  // to be absent, so it either happened before (and is read below) or fails.
  BH_CHECK(cluster_->join());
  cluster_trust_->attach(&cluster_->client());
  lease_source_ = cluster_.get();
  // A member publishes its signed entry at every start: its --listen address may have changed.
  // Not fatal: the entry of its last start (if any) still stands, and nothing here runs a container.
  if (!trust_->cluster_key().empty())
    if (auto r = cluster_trust_->publish(options_.host_name, options_.listen, identity_->fingerprint()); !r)
      fmt::print(stderr, "bulkheadd: cluster: publishing this host's trust entry: {}\n", r.error().text());
  auto placements = cluster_->client().list(kPlacementPrefix);
  if (!placements)
    return fail(fmt::format("reading the placements from etcd at {}: {}", fmt::join(options_.cluster, ","),
                            placements.error().message),
                placements.error().code);
  std::map<std::string, std::string> owner;
  for (const auto &[key, kv] : *placements)
    if (auto p = parse_placement(kv.value); p)
      owner[key.substr(std::string(kPlacementPrefix).size())] = p->host;
  for (auto &[name, e] : entries_) {
    std::lock_guard lock(e->mu);
    auto &s = e->rec.status;
    auto it = owner.find(name);
    if (it == owner.end())
      continue; // no placement: a fenced copy stays fenced (its owner may have destroyed it on purpose)
    std::string fenced_by = it->second != options_.host_name ? it->second : "";
    if (fenced_by == s.fenced_by)
      continue;
    s.fenced_by = fenced_by;
    if (!fenced_by.empty()) {
      fmt::print(stderr, "bulkheadd: cluster: {} is placed on {}: fenced here (stopped, never started)\n",
                 name, fenced_by);
      s.want_running = false; // adoption and the restart policy leave it alone from here on
    }
    (void)save_locked(*e);
  }
  return {};
}

void Daemon::start_cluster() {
  std::vector<std::pair<std::string, EntryPtr>> table;
  {
    std::lock_guard lock(table_mu_);
    table.assign(entries_.begin(), entries_.end());
  }
  for (auto &[name, e] : table) {
    std::unique_lock lock(e->mu);
    if (e->rec.status.fenced_by.empty() || (!e->watch_fd && !e->restart_at_ms))
      continue;
    // Re-adopted running: it runs on its owner too, so this copy goes at once (SIGKILL).
    if (auto r = stop_locked(*e, lock, 0); !r)
      fmt::print(stderr, "bulkheadd: cluster: stopping the fenced {}: {}\n", name, r.error().text());
    events_.publish("container-fenced", name, {{"owner", e->rec.status.fenced_by}});
  }
  cluster_->start();
  ClusterHooks hooks;
  hooks.containers = [this] { return cluster_locals(); };
  hooks.fence = [this](const std::string &name, const std::string &owner) { fence(name, owner); };
  hooks.unfence = [this](const std::string &name) { unfence(name); };
  hooks.activate = [this](const std::string &name) { return activate_replica(name); };
  hooks.each_round = [this] { cluster_trust_->keep_fresh(); };
  hooks.event = [this](const std::string &action, const std::string &name, const json &detail) {
    events_.publish(action, name, detail);
  };
  control_ = std::make_unique<ClusterControl>(*cluster_, std::move(hooks));
  control_->start();
  if (options_.cluster_self_fence) {
    self_fence_ = std::make_unique<SelfFence>(*cluster_, self_fence_hooks());
    self_fence_ptr_ = self_fence_.get();
    self_fence_->start();
  }
}

SelfFenceHooks Daemon::self_fence_hooks() {
  SelfFenceHooks h;
  h.running_protected = [this] {
    std::vector<SelfFenceHooks::Protected> out;
    std::vector<EntryPtr> table;
    {
      std::lock_guard lock(table_mu_);
      for (auto &[name, e] : entries_)
        table.push_back(e);
    }
    std::set<std::string> migrating;
    {
      std::lock_guard lock(cluster_busy_mu_);
      migrating = cluster_busy_; // a migration hands the placement over itself
    }
    for (auto &e : table) {
      std::unique_lock lock(e->mu, std::try_to_lock);
      if (!lock.owns_lock())
        continue; // busy: asked again next tick
      const auto &r = e->rec;
      if (e->watch_fd && r.status.state == "running" && r.status.fenced_by.empty() &&
          !r.protection.standby.empty() && !migrating.count(r.config.name))
        out.push_back({r.config.name, r.protection.standby});
    }
    return out;
  };
  h.standby_reaches_etcd = [this](const std::string &standby) -> Result<bool> {
    auto remote = BH_TRY(peer_remote(standby));
    auto conn = BH_TRY(connect_remote(remote, *identity_, 1));
    conn.set_timeout(3); // its own read of etcd is bounded by 2 s
    auto answer = BH_TRY(conn.request({{"op", "cluster.etcd"}}));
    auto f = answer.header.find("etcd_reachable");
    if (f == answer.header.end() || !f->is_boolean())
      return fail(standby + " answered cluster.etcd without \"etcd_reachable\"", EPROTO);
    return f->get<bool>();
  };
  auto set_frozen = [this](const std::string &name, bool freeze) -> Status {
    auto e = BH_TRY(get(name));
    std::lock_guard lock(e->mu);
    auto &st = e->rec.status.state;
    if (!freeze && st != "frozen")
      return {}; // stopped or thawed meanwhile: nothing to undo
    if (freeze && st != "running")
      return fail("container \"" + name + "\" is " + st, EINVAL);
    return set_frozen_locked(*e, freeze, {{"self_fence", true}});
  };
  h.freeze = [set_frozen](const std::string &name) { return set_frozen(name, true); };
  h.thaw = [set_frozen](const std::string &name) { return set_frozen(name, false); };
  h.placement_host = [this](const std::string &name) -> Result<std::optional<std::string>> {
    auto kv = BH_TRY(cluster_->client().get(kPlacementPrefix + name));
    if (!kv)
      return std::optional<std::string>();
    auto p = BH_TRY(parse_placement(kv->value));
    return std::optional<std::string>(p.host);
  };
  h.fence = [this](const std::string &name, const std::string &owner) { fence(name, owner); };
  return h;
}

std::vector<LocalContainer> Daemon::cluster_locals() {
  std::vector<std::pair<std::string, EntryPtr>> table;
  {
    std::lock_guard lock(table_mu_);
    table.assign(entries_.begin(), entries_.end());
  }
  std::set<std::string> busy;
  {
    std::lock_guard lock(cluster_busy_mu_);
    busy = cluster_busy_;
  }
  std::vector<LocalContainer> out;
  for (auto &[name, e] : table) {
    LocalContainer c;
    c.name = name;
    // A container's mu is held through a whole start or stop: skip it this round.
    std::unique_lock lock(e->mu, std::try_to_lock);
    c.busy = !lock.owns_lock() || busy.count(name);
    if (lock.owns_lock()) {
      c.standby = e->rec.protection.standby;
      c.mode = e->rec.protection.mode;
      c.restart = e->rec.config.restart.kind != RestartPolicy::Kind::No;
      c.fenced_by = e->rec.status.fenced_by;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void Daemon::fence(const std::string &name, const std::string &owner) {
  auto e = find(name);
  if (!e)
    return;
  std::unique_lock lock(e->mu);
  auto &s = e->rec.status;
  if (s.fenced_by == owner)
    return;
  s.fenced_by = owner;
  (void)save_locked(*e);
  if (e->watch_fd || e->restart_at_ms) {
    // SIGKILL at once: the owner runs it already, so this copy's further writes are to be lost anyway.
    if (auto r = stop_locked(*e, lock, 0); !r)
      fmt::print(stderr, "bulkheadd: cluster: stopping the fenced {}: {}\n", name, r.error().text());
  }
  s.want_running = false;
  (void)save_locked(*e);
  events_.publish("container-fenced", name, {{"owner", owner}});
}

void Daemon::unfence(const std::string &name) {
  auto e = find(name);
  if (!e)
    return;
  std::lock_guard lock(e->mu);
  if (e->rec.status.fenced_by.empty())
    return;
  e->rec.status.fenced_by.clear();
  (void)save_locked(*e);
  events_.publish("container-unfenced", name);
}

Status Daemon::claim_placement(const std::string &name) {
  if (!cluster_)
    return {};
  {
    // An arriving migration: the import creates it here while the placement still names the
    // source; serve_migrate_receive takes it over once the container exists (take_placement).
    std::lock_guard lock(cluster_busy_mu_);
    if (cluster_busy_.count(name))
      return {};
  }
  const auto &client = cluster_->client();
  const std::string key = kPlacementPrefix + name;
  LocalContainer c;
  c.name = name;
  auto created = client.create_if_absent(key, owned_placement(options_.host_name, c, nullptr).dump());
  if (!created)
    return fail(fmt::format("creating {}: claiming its name in the cluster (etcd at {}): {}", name,
                            fmt::join(options_.cluster, ","), created.error().message),
                created.error().code);
  if (*created)
    return {};
  auto cur = BH_TRY(client.get(key));
  auto p = cur ? parse_placement(cur->value) : Result<Placement>(fail("gone", ENOENT));
  if (!p)
    return fail(fmt::format("creating {}: its placement changed meanwhile; try again", name), EAGAIN);
  // Already this host's: left by a destroy that could not reach etcd, or failed over here (an
  // activation that makes the container through create() claims what is its own).
  if (p->host == options_.host_name)
    return {};
  return fail(fmt::format("creating {}: the name is taken in the cluster: host {} owns it (placement epoch "
                          "{}); container names are unique in a cluster",
                          name, p->host, p->epoch),
              EEXIST);
}

void Daemon::release_placement(const std::string &name) {
  if (!cluster_)
    return;
  const auto &client = cluster_->client();
  const std::string key = kPlacementPrefix + name;
  auto cur = client.get(key);
  if (cur && *cur) {
    auto p = parse_placement((*cur)->value);
    // Another host's placement (this copy was fenced, or it migrated away) is not ours to remove.
    if (!p || p->host != options_.host_name)
      return;
    auto r = client.remove_if({{key, (*cur)->mod_revision}}, key);
    if (r && *r)
      return;
    if (r) // changed meanwhile: the cluster thread removes it if it is still ours
      return;
    cur = tl::unexpected(r.error());
  }
  if (!cur)
    fmt::print(stderr, "bulkheadd: cluster: removing the placement of {}: {} (the cluster thread retries)\n",
               name, cur.error().text());
}

Status Daemon::take_placement(const std::string &name, const std::string &from) {
  if (!cluster_)
    return {};
  const auto &client = cluster_->client();
  const std::string key = kPlacementPrefix + name;
  LocalContainer c;
  c.name = name;
  Placement mine = owned_placement(options_.host_name, c, nullptr);
  auto cur = BH_TRY(client.get(key));
  if (!cur) {
    if (BH_TRY(client.create_if_absent(key, mine.dump())))
      return {};
    return fail(fmt::format("taking over the placement of {}: it was created meanwhile", name), EAGAIN);
  }
  auto p = BH_TRY(parse_placement(cur->value));
  if (p.host == options_.host_name)
    return {};
  // from empty (a source reclaiming after a failed migration): any host but a failover's.
  if ((!from.empty() && p.host != from) || (from.empty() && !p.failed_over_from.empty()))
    return fail(fmt::format("taking over the placement of {} from {}: it names host {} (epoch {})", name,
                            from.empty() ? "the migration's target" : from, p.host, p.epoch),
                EEXIST);
  mine.standby = p.standby == options_.host_name ? "" : p.standby;
  mine.mode = mine.standby.empty() ? "" : p.mode;
  mine.restart = p.restart;
  mine.epoch = p.epoch + 1;
  if (!BH_TRY(client.put_if({{key, cur->mod_revision}}, key, mine.dump())))
    return fail(fmt::format("taking over the placement of {}: it changed meanwhile", name), EAGAIN);
  return {};
}

void Daemon::give_placement(const std::string &name, const std::string &to) {
  if (!cluster_)
    return;
  const auto &client = cluster_->client();
  const std::string key = kPlacementPrefix + name;
  auto cur = client.get(key);
  if (cur && *cur) {
    auto p = parse_placement((*cur)->value);
    if (!p || p->host != options_.host_name)
      return;
    p->host = to;
    p->epoch++;
    auto r = client.put_if({{key, (*cur)->mod_revision}}, key, p->dump());
    if (r)
      return;
    cur = tl::unexpected(r.error());
  }
  if (!cur)
    fmt::print(stderr, "bulkheadd: cluster: handing the placement of {} back to {}: {}\n", name, to,
               cur.error().text());
}

void Daemon::cluster_busy(const std::string &name, bool busy) {
  std::lock_guard lock(cluster_busy_mu_);
  if (busy)
    cluster_busy_.insert(name);
  else
    cluster_busy_.erase(name);
}

} // namespace bulkhead::daemon
