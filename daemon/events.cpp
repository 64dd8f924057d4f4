#include "daemon/events.hpp"

#include <chrono>

namespace bulkhead::daemon {

namespace {
constexpr size_t kQueueBound = 1024;
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<std::string> EventBus::Subscription::next(int timeout_ms) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty() || lost_; }))
    return std::nullopt;
  if (lost_) {
    nlohmann::json j = {{"type", "lifecycle"},
                        {"action", "events-lost"},
                        {"name", ""},
                        {"time", now_unix_ms()},
                        {"detail", {{"count", lost_}}}};
    lost_ = 0;
    return j.dump();
  }
  std::string line = std::move(queue_.front());
  queue_.pop_front();
  return line;
}

void EventBus::publish(const std::string &action, const std::string &name, nlohmann::json detail) {
  nlohmann::json j = {{"type", "lifecycle"},
                      {"action", action},
                      {"name", name},
                      {"time", now_unix_ms()},
                      {"detail", std::move(detail)}};
  std::string line = j.dump();
  std::lock_guard lock(mu_);
  ++published_;
  for (auto &s : subs_) {
    std::lock_guard slock(s->mu_);
    if (s->queue_.size() >= kQueueBound) {
      s->queue_.pop_front();
      ++s->lost_;
    }
    s->queue_.push_back(line);
    s->cv_.notify_one();
  }
}

std::shared_ptr<EventBus::Subscription> EventBus::subscribe() {
  auto s = std::make_shared<Subscription>();
  std::lock_guard lock(mu_);
  subs_.push_back(s);
  return s;
}

void EventBus::unsubscribe(const std::shared_ptr<Subscription> &s) {
  std::lock_guard lock(mu_);
  subs_.remove(s);
}

size_t EventBus::subscribers() {
  std::lock_guard lock(mu_);
  return subs_.size();
}

} // namespace bulkhead::daemon
