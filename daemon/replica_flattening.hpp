// A standby's memory chain flattened ahead of need (daemon/replica_flattening.cpp says how and
// why): the job, shared by the thread that runs it, the set that adopts it and whoever cancels it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

struct Daemon::ReplicaFlattening {
  std::string name;   // the replica
  std::string images; // img-K: the directory made self-contained
  std::string work;   // replicas/NAME/.flatten-work: hard links of a committed set's images
  int length = 0;     // how many directories img-K was made of
  std::atomic<bool> cancel{false};
  std::thread thread; // joined by the destructor: the thread itself holds no reference

  void finish(Status r);
  bool done();
  Status wait(); // waits for the end and returns its result
  ~ReplicaFlattening();

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status result_;
};

} // namespace bulkhead::daemon
