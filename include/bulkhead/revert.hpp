// Undo stack for multi-step operations: each step registers how to undo itself; unless commit()
// is called, the destructor undoes everything in reverse order. Every failure path of create
// leaves nothing behind because of this.
#pragma once

#include <functional>
#include <vector>

namespace bulkhead {

class Revert {
public:
  Revert() = default;
  Revert(const Revert &) = delete;
  Revert &operator=(const Revert &) = delete;
  ~Revert() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it)
      (*it)();
  }
  void add(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
  void commit() { steps_.clear(); }

private:
  std::vector<std::function<void()>> steps_;
};

} // namespace bulkhead
