// A dump with CRIU inside the container's network namespace (CheckpointOptions::
// skip_idle_network_lock; migration/criu_netns.hpp says why): decided twice, before CRIU starts (CRIU
// must start in the namespace) and once the caller froze the container (a frozen task opens no
// connection; one a listener queues meanwhile is left out, CRIU's --tcp-skip-in-flight), and
// recorded in the images for the restore.
//
// | step                     | where                  | what                                         |
// |--------------------------|------------------------|----------------------------------------------|
// | before CRIU starts       | idle_network_namespace | the namespace, if no TCP connection is in it |
// |                          |                        | (else the dump locks as it always did)       |
// | CRIU's start             | CriuService::start     | inside that namespace                        |
// | the caller's freeze      | before_dump            | -                                            |
// | frozen, before the dump  | still_idle             | same init, still no connection; else that    |
// |                          |                        | CRIU goes and the dump locks as always       |
// | the dump                 | mark_criu_netns        | the images record where CRIU ran             |
// | restore                  | criu_ran_in_tree_netns | CRIU starts in the namespace the tree comes  |
// |                          |                        | back in instead of being handed it           |
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>

#include "bulkhead/result.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::runtime {

struct IdleNetns {
  pid_t pid = 0;  // the container's init when it was looked at
  UniqueFd netns; // its network namespace
  UniqueFd diag;  // a sock_diag socket in it
};

// The network namespace of `pid` when it has no TCP connection; nullopt, after telling `why_not`,
// otherwise (or when it cannot be looked at: the dump then locks the network as it always did).
std::optional<IdleNetns> idle_network_namespace(pid_t pid,
                                                const std::function<void(const std::string &)> &why_not);

// Once the container is frozen: its init is still `pid` and its namespace still has no connection.
bool still_idle(const IdleNetns &n, pid_t pid, const std::function<void(const std::string &)> &why_not);

// The images' record of where CRIU ran: written for a dump in the tree's namespace, removed (a
// stale one) for any other, before CRIU writes the images.
Status mark_criu_netns(const std::string &images, bool in_tree_netns);
bool criu_ran_in_tree_netns(const std::string &images);

} // namespace bulkhead::runtime
