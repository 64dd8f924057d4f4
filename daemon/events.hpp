// Lifecycle events: published by the daemon, streamed to /1.0/events subscribers as JSON lines.
// Each subscriber has a bounded queue; a subscriber that does not keep up loses its oldest events
// (and is told so by a "events-lost" event) rather than slowing the daemon down.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace bulkhead::daemon {

class EventBus {
public:
  class Subscription {
  public:
    // Waits up to timeout_ms for the next event (as one JSON line without the newline).
    std::optional<std::string> next(int timeout_ms);

  private:
    friend class EventBus;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    uint64_t lost_ = 0;
  };

  void publish(const std::string &action, const std::string &name,
               nlohmann::json detail = nlohmann::json::object());
  std::shared_ptr<Subscription> subscribe();
  void unsubscribe(const std::shared_ptr<Subscription> &s);
  uint64_t published() const { return published_; }
  size_t subscribers();

private:
  std::mutex mu_;
  std::list<std::shared_ptr<Subscription>> subs_;
  uint64_t published_ = 0;
};

int64_t now_unix_ms();

} // namespace bulkhead::daemon
