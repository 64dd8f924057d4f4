#include "daemon/operations.hpp"

#include <fcntl.h>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>

#include "daemon/events.hpp"

namespace bulkhead::daemon {

namespace {

constexpr int64_t kKeepFinishedMs = 10 * 60 * 1000;

} // namespace

std::string random_id() {
  unsigned char b[16];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::read(fd, b, sizeof b) != sizeof b)
    for (auto &c : b)
      c = static_cast<unsigned char>(::random());
  if (fd >= 0)
    ::close(fd);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      s += '-';
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

Operation::Operation(std::string id, std::string description, std::string resource)
    : id_(std::move(id)), description_(std::move(description)), resource_(std::move(resource)),
      created_ms_(now_unix_ms()), updated_ms_(created_ms_) {}

void Operation::set_progress(const std::string &stage, uint64_t done, uint64_t total) {
  std::lock_guard lock(mu_);
  stage_ = stage;
  done_ = done;
  total_ = total;
  updated_ms_ = now_unix_ms();
}

void Operation::set_metadata(nlohmann::json metadata) {
  std::lock_guard lock(mu_);
  metadata_ = std::move(metadata);
}

nlohmann::json Operation::to_json() const {
  std::lock_guard lock(mu_);
  int percent = total_ ? static_cast<int>(done_ * 100 / total_) : (status_ == "success" ? 100 : 0);
  return {{"id", id_},
          {"description", description_},
          {"status", status_},
          {"progress", {{"stage", stage_}, {"done", done_}, {"total", total_}, {"percent", percent}}},
          {"error", error_},
          {"resource", resource_},
          {"metadata", metadata_},
          {"created_at", created_ms_ / 1000},
          {"updated_at", updated_ms_ / 1000}};
}

bool Operation::done() const {
  std::lock_guard lock(mu_);
  return status_ != "running";
}

bool Operation::wait(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  auto pred = [&] { return status_ != "running"; };
  if (timeout_ms < 0) {
    cv_.wait(lock, pred);
    return true;
  }
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), pred);
}

void Operation::finish(const Status &result) {
  std::lock_guard lock(mu_);
  if (result)
    status_ = "success";
  else if (cancel_ && result.error().code == ECANCELED)
    status_ = "cancelled";
  else
    status_ = "failure";
  if (!result)
    error_ = result.error().text();
  updated_ms_ = now_unix_ms();
  cv_.notify_all();
}

std::shared_ptr<Operation> Operations::start(const std::string &description, const std::string &resource,
                                             Work work, std::function<void(const Operation &)> on_done) {
  auto op = std::make_shared<Operation>(random_id(), description, resource);
  {
    std::lock_guard lock(mu_);
    prune_locked();
    ops_[op->id()] = op;
    ++running_;
  }
  std::thread([this, op, work = std::move(work), on_done = std::move(on_done)] {
    Status result = work(*op);
    op->finish(result);
    if (on_done)
      on_done(*op);
    std::lock_guard lock(mu_);
    --running_;
    idle_cv_.notify_all();
  }).detach();
  return op;
}

std::shared_ptr<Operation> Operations::find(const std::string &id) {
  std::lock_guard lock(mu_);
  auto it = ops_.find(id);
  return it == ops_.end() ? nullptr : it->second;
}

nlohmann::json Operations::list() {
  std::lock_guard lock(mu_);
  prune_locked();
  auto out = nlohmann::json::array();
  for (auto &[id, op] : ops_)
    out.push_back(op->to_json());
  return out;
}

bool Operations::cancel(const std::string &id) {
  auto op = find(id);
  if (!op || op->done())
    return false;
  op->cancel_ = true;
  return true;
}

void Operations::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return running_ == 0; });
}

void Operations::prune_locked() {
  int64_t now = now_unix_ms();
  for (auto it = ops_.begin(); it != ops_.end();) {
    bool old = false;
    {
      std::lock_guard l(it->second->mu_);
      old = it->second->status_ != "running" && now - it->second->updated_ms_ > kKeepFinishedMs;
    }
    it = old ? ops_.erase(it) : std::next(it);
  }
}

} // namespace bulkhead::daemon
