// What every import source shares: the progress callback (throttled) and the cancel flag.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "bulkhead/result.hpp"
#include "storage/template_store.hpp"

namespace bulkhead::storage {

class ImportContext {
public:
  ImportContext(const ProgressFn &progress, const std::atomic<bool> *cancel)
      : progress_(progress), cancel_(cancel) {}

  bool cancelled() const { return cancel_ != nullptr && cancel_->load(std::memory_order_relaxed); }
  Status check_cancel() const {
    if (cancelled())
      return fail("import cancelled", ECANCELED);
    return {};
  }

  // Forwards at most every 100 ms per stage (an archive has tens of thousands of entries), and
  // always when the stage changes or `force` is set.
  void report(const std::string &stage, uint64_t done, uint64_t total, bool force = false) {
    if (!progress_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (!force && stage == last_stage_ && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    last_stage_ = stage;
    progress_(Progress{stage, done, total});
  }

private:
  const ProgressFn &progress_;
  const std::atomic<bool> *cancel_;
  std::string last_stage_;
  std::chrono::steady_clock::time_point last_{};
};

} // namespace bulkhead::storage
