// Helpers for the cgroup v2 integration tests. Tests needing real controllers derive from
// CgroupTest and are skipped on hosts without them (the hybrid dev hosts); tests/vm/
// run-cgroup-tests.sh runs them in a VM with the unified hierarchy. Containers use the default
// cgroupsPath, so their cgroup is <cgroup2 mount>/bulkhead/<id>.
#pragma once

#include <sys/vfs.h>

#include <cstdint>
#include <string>
#include <thread>

#include "harness.hpp"

namespace bh_test {

// The cgroup2 mount: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid); "" when none.
inline std::string cgroup2_mount() {
  for (const char *candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs s {};
    if (::statfs(candidate, &s) == 0 && s.f_type == 0x63677270)
      return candidate;
  }
  return "";
}

inline bool host_has_cgroup2_controllers() {
  return cgroup2_mount() == "/sys/fs/cgroup" &&
         contains(read_file("/sys/fs/cgroup/cgroup.controllers"), "memory");
}

// A value of a "key value" file (cpu.stat, memory.events); -1 when absent.
inline int64_t keyed_value(const std::string &text, const std::string &key) {
  for (const auto &line : split_lines(text)) {
    auto words = split_words(line);
    if (words.size() == 2 && words[0] == key)
      return std::stoll(words[1]);
  }
  return -1;
}

// Polls `pred` every 50 ms up to `timeout`.
template <class Pred> bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class CgroupBase : public BulkheadTest {
protected:
  void SetUp() override {
    BulkheadTest::SetUp();
    if (IsSkipped())
      return;
    if (cgroup2_mount().empty())
      GTEST_SKIP() << "no cgroup2 filesystem on this host";
  }
  // Ids are unique per test process: every test shares <mount>/bulkhead.
  static std::string unique_id(const std::string &name) { return name + "-" + std::to_string(::getpid()); }
  static std::string cgroup_dir(const std::string &id) { return cgroup2_mount() + "/bulkhead/" + id; }
  static std::string cg_read(const std::string &id, const std::string &file) {
    return trim(read_file(cgroup_dir(id) + "/" + file));
  }
  // Adds capabilities to every set of the config (CAP_MKNOD for the device tests).
  static void add_caps(json &config, std::initializer_list<const char *> caps) {
    for (const char *set : {"bounding", "effective", "permitted"})
      for (const char *c : caps)
        config["process"]["capabilities"][set].push_back(c);
  }
};

// Real controllers needed: skipped unless /sys/fs/cgroup is cgroup2 with the memory controller.
class CgroupTest : public CgroupBase {
protected:
  void SetUp() override {
    CgroupBase::SetUp();
    if (IsSkipped())
      return;
    if (!host_has_cgroup2_controllers())
      GTEST_SKIP()
          << "needs the unified cgroup v2 hierarchy with controllers (run tests/vm/run-cgroup-tests.sh)";
  }
};

} // namespace bh_test
