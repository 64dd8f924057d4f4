// Long work is an operation (Incus's model): it runs on its own thread, has an id, a progress
// the client can poll, can be waited for and cancelled. Finished operations are kept for a while
// so a client that reconnects can still read the result.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

// A fresh random id, a version-4 UUID: operations and snapshots are named by one.
std::string random_id();

class Operation {
public:
  Operation(std::string id, std::string description, std::string resource);

  void set_progress(const std::string &stage, uint64_t done, uint64_t total);
  // What a finished operation wants its client to know (an export's sizes), as "metadata".
  void set_metadata(nlohmann::json metadata);
  const std::atomic<bool> &cancel_flag() const { return cancel_; }
  bool cancelled() const { return cancel_; }
  nlohmann::json to_json() const;
  // Waits until done or timeout_ms passed (negative: no bound). True when done.
  bool wait(int64_t timeout_ms);
  bool done() const;
  const std::string &id() const { return id_; }

private:
  friend class Operations;
  void finish(const Status &result);

  const std::string id_, description_, resource_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string status_ = "running", stage_, error_;
  uint64_t done_ = 0, total_ = 0;
  nlohmann::json metadata_ = nlohmann::json::object();
  int64_t created_ms_, updated_ms_;
  std::atomic<bool> cancel_{false};
};

class Operations {
public:
  using Work = std::function<Status(Operation &)>;
  // Starts `work` on a new thread. `on_done` (optional) runs after it finished, for events.
  std::shared_ptr<Operation> start(const std::string &description, const std::string &resource, Work work,
                                   std::function<void(const Operation &)> on_done = nullptr);
  std::shared_ptr<Operation> find(const std::string &id);
  nlohmann::json list();
  // Cancels: false when the operation already finished.
  bool cancel(const std::string &id);
  // Waits for every running operation (daemon shutdown).
  void drain();

private:
  void prune_locked();
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::map<std::string, std::shared_ptr<Operation>> ops_;
  int running_ = 0;
};

} // namespace bulkhead::daemon
