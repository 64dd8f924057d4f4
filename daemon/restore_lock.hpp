// The inbound lock of a container being restored by CRIU into a network namespace the daemon made
// (its NICs are set up first, so restored sockets find their addresses).
//
// Why: CRIU brings established TCP connections back in repair mode only near the end of the
// restore. A packet from a peer that reaches the new namespace before that (the peer retransmits
// during the downtime, and the addresses are announced, or answered for by proxy ARP/NDP, as soon
// as the NICs exist) finds no socket, and the kernel answers with a reset: the connection that a
// live migration was to keep dies. CRIU locks the network itself only for namespaces it restores;
// ours is external, so the daemon drops every inbound packet not on lo from before the NIC setup
// (the rule names no interface, so it holds for the NICs made after it) until the restore is done,
// and the peers' retransmissions get through afterwards.
#pragma once

#include <sys/types.h>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

// nftables table "inet bulkhead_restore_lock" in the netns of pid: input, not lo, drop.
Status lock_restore_inbound(pid_t pid);
// Removes it (idempotent).
Status unlock_restore_inbound(pid_t pid);

} // namespace bulkhead::daemon
