// Placement of containers in an etcd-backed cluster (issue 14, docs/cluster.md "Placement"): the key
// /bulkhead/placement/NAME says which host owns container NAME, which host holds its standby and
// what became of it after its host died. The owner creates and updates it (create_if_absent, or a
// guarded write from a value naming itself); only the elected leader moves it to another host.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include <bulkhead/result.hpp>

namespace bulkhead::daemon {

inline constexpr const char *kPlacementPrefix = "/bulkhead/placement/";
inline constexpr const char *kMembersPrefix = "/bulkhead/members/";
inline constexpr const char *kLeaderKey = "/bulkhead/leader";

struct Placement {
  std::string host;     // the owner: the only host that may run the container
  std::string standby;  // the host holding its replica (rec.protection.standby); empty: unprotected
  std::string mode;     // "memory" or "disk" (rec.protection.mode)
  bool restart = false; // the container has a restart policy
  int64_t epoch = 1;    // +1 on every move by the leader
  // Set by the leader's failover: the dead host it came from; the new owner activates its replica
  // while this is set and no container of that name exists there yet.
  std::string failed_over_from;
  bool lost = false;       // its host died and no other host could take it (reported)
  std::string lost_reason; // why: no standby, standby offline
  std::string error;       // the owner's last failure to activate it (published for `cluster list`)
  int64_t attempts = 0;    // activation attempts that failed

  nlohmann::json to_json() const;
  std::string dump() const { return to_json().dump(); }
};

// A placement's value as stored; an error names what is wrong (a key that is not bulkhead's).
Result<Placement> parse_placement(const std::string &text);

// What the host's cluster thread needs of one local container (read without waiting on it).
struct LocalContainer {
  std::string name, standby, mode;
  bool restart = false;
  std::string fenced_by; // non-empty: fenced, the placement named this host
  bool busy = false;     // being started/stopped, migrated or activated: left alone this round
};

// The placement a local container's owner publishes: `old` (its current value, when any) with the
// container's own fields; failover marks are cleared since the container now exists here.
Placement owned_placement(const std::string &host, const LocalContainer &c, const Placement *old);

} // namespace bulkhead::daemon
