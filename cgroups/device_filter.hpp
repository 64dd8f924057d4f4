// Device access control on cgroup v2: the rule list becomes a BPF_PROG_TYPE_CGROUP_DEVICE
// program, built instruction by instruction (no libbpf, no compiler), loaded with bpf(2) and
// attached to the container's cgroup with BPF_F_ALLOW_MULTI.
//
// Semantics (the device cgroup v1 list, as the OCI spec defines it): rules apply in order and a
// later rule overrides an earlier one, per access kind. The program therefore decides each
// requested kind (m, r, w) on its own: the last rule that matches the device and names that kind
// decides it; no match denies. A request is allowed only when every kind it asks for is.
//
// Program layout:
//   r2 = ctx->access_type & 0xffff   (device type: 1 block, 2 char)
//   r3 = ctx->access_type >> 16      (requested kinds: 1 mknod, 2 read, 4 write)
//   r4 = ctx->major, r5 = ctx->minor
//   for each kind K in (m, r, w):
//     if (r3 & K) == 0: goto next_kind
//     for each rule naming K, last first:
//       if type/major/minor differ: goto next_rule
//       allow: goto next_kind      deny: return 0
//     return 0                      (omitted after a rule that matches every device)
//   next_kind: ...
//   return 1
//
// The verifier costs about 1 ms per load, and almost every container has the same rules, so the
// loaded program is cached in bpffs: pinned at /sys/fs/bpf/bulkhead/devices-<SHA-256 of the
// instructions> and opened with BPF_OBJ_GET by later creates. Whatever is found there is trusted
// only after the kernel confirms it: the object is reopened by id (which yields only programs),
// must be a BPF_PROG_TYPE_CGROUP_DEVICE program, and its tag, which the kernel computes from the
// instructions it loaded, must equal the tag of the instructions we would load. Anything else is
// unlinked and replaced by a fresh load. Without bpffs at /sys/fs/bpf (or without permission),
// every create loads its own program as before. Pins live until bpffs is unmounted (reboot), one
// per distinct rule set; removing them is always safe.
#pragma once

#include <utility>

#include <linux/bpf.h>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"
#include "oci/spec.hpp"

namespace bulkhead::cgroups {

// The program for `rules` (pure; unit tests run it through a small interpreter).
Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceCgroupRule> &rules);

// bpf(BPF_PROG_LOAD); a verifier rejection comes back with the verifier's log.
Result<UniqueFd> load_device_filter(const std::vector<bpf_insn> &program);

// Where the cache pins `program`.
std::string device_filter_pin_path(const std::vector<bpf_insn> &program);

// A program fd holding `program` and its kernel id: the cached one when it checks out, else a
// fresh load (then pinned when bpffs is there).
Result<std::pair<UniqueFd, uint32_t>> device_filter_fd(const std::vector<bpf_insn> &program);

// Loads (or takes from the cache) the program for `rules` and attaches it to the cgroup directory
// `cgroup_fd`, then detaches the device programs that were attached there before (so `update` replaces the
// rules with no window where none apply). `cgroup_path` is for messages.
Status attach_device_filter(int cgroup_fd, const std::string &cgroup_path,
                            const std::vector<oci::DeviceCgroupRule> &rules);

} // namespace bulkhead::cgroups
