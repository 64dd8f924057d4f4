#include "daemon/self_fence.hpp"

#include <chrono>

#include <fmt/core.h>

#include "daemon/steady_clock.hpp"

namespace bulkhead::daemon {

namespace {

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr int64_t kAskAgainMs = 1000;

// Whether the member's lease is surely alive at least kTriggerMs longer.
bool lease_fresh(const ClusterMember &member) {
  return member.lease_valid_until_ms() - steady_ms() >= kTriggerMs;
}

} // namespace

SelfFence::SelfFence(const ClusterMember &member, SelfFenceHooks hooks)
    : member_(member), hooks_(std::move(hooks)) {}

SelfFence::~SelfFence() { stop(); }

void SelfFence::start() {
  thread_ = std::thread([this] { run(); });
}

void SelfFence::stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

bool SelfFence::holds(const std::string &name) {
  std::lock_guard lock(mu_);
  return frozen_.count(name) > 0;
}

std::set<std::string> SelfFence::frozen() {
  std::lock_guard lock(mu_);
  return frozen_;
}

void SelfFence::run() {
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    round();
    lock.lock();
    wake_.wait_for(lock, kTick, [this] { return quit_; });
  }
}

void SelfFence::round() {
  if (!lease_fresh(member_)) {
    for (const auto &c : hooks_.running_protected()) {
      {
        std::lock_guard lock(mu_);
        if (frozen_.count(c.name))
          continue;
      }
      auto kept = kept_running_.find(c.name);
      if (kept != kept_running_.end() && steady_ms() < kept->second)
        continue;
      auto witness = hooks_.standby_reaches_etcd(c.standby);
      if (witness && !*witness) {
        // Its standby cannot reach etcd either: no leader can fail it over, so it runs on (asked
        // again in a second).
        if (kept == kept_running_.end())
          fmt::print(stderr,
                     "bulkheadd: cluster: etcd does not answer, nor does it to {}'s standby {}: {} runs on "
                     "(no host can fail it over)\n",
                     c.name, c.standby, c.name);
        kept_running_[c.name] = steady_ms() + kAskAgainMs;
        continue;
      }
      if (!lease_fresh(member_) && member_.lease_valid_until_ms() > 0) {
        {
          // Marked before the freeze: a replication round that starts meanwhile skips it.
          std::lock_guard lock(mu_);
          frozen_.insert(c.name);
        }
        if (auto r = hooks_.freeze(c.name); !r) {
          fmt::print(stderr, "bulkheadd: cluster: self-fencing {}: freezing it: {}\n", c.name,
                     r.error().text());
          std::lock_guard lock(mu_);
          frozen_.erase(c.name);
          continue;
        }
        fmt::print(
            stderr,
            "bulkheadd: cluster: this host's etcd lease may expire ({}): {} frozen until etcd answers, "
            "so that it never runs beside its copy on {}\n",
            witness ? "its standby still reaches etcd"
                    : "its standby cannot be asked: " + witness.error().text(),
            c.name, c.standby);
      }
    }
    return;
  }
  kept_running_.clear();
  for (const auto &name : frozen()) {
    // etcd answers again: the placement says whether this copy may go on.
    auto host = hooks_.placement_host(name);
    if (!host)
      continue; // read again next tick; the container stays frozen meanwhile
    if (*host && **host != member_.host()) {
      fmt::print(stderr,
                 "bulkheadd: cluster: {} failed over to {} while this host was cut off: fenced here\n", name,
                 **host);
      hooks_.fence(name, **host);
    } else if (auto r = hooks_.thaw(name); !r) {
      fmt::print(stderr, "bulkheadd: cluster: thawing the self-fenced {}: {}\n", name, r.error().text());
      continue;
    } else {
      fmt::print(stderr, "bulkheadd: cluster: etcd answers again and {} is still placed here: thawed\n",
                 name);
    }
    std::lock_guard lock(mu_);
    frozen_.erase(name);
  }
}

} // namespace bulkhead::daemon
