// Id ranges of unprivileged system containers (issue 15 item 2, docs/unprivileged.md): each one
// gets its own block of 65536 host uids and gids, carved from root's entries in /etc/subuid and
// /etc/subgid (or from bulkheadd --id-range), so root inside is an unprivileged uid outside and
// no two containers share an id. The allocation lives in the container's record (ContainerConfig::
// idmap): the records are the only state, so a daemon restart or SIGKILL keeps every range and a
// destroy frees its range with the record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/result.hpp"
#include "daemon/container_config.hpp"
#include "storage/extractor.hpp"

namespace bulkhead::daemon {

inline constexpr uint32_t kIdRangeSize = 65536;

// One subordinate id entry: ids [start, start + count).
struct SubIdEntry {
  uint64_t start = 0, count = 0;
};

// Where new ranges come from: root's uid and gid entries, and what they were read from (for errors).
struct IdPool {
  std::vector<SubIdEntry> uids, gids;
  std::string source;
};

// The entries of `user` (a name, or its uid as a number, as shadow's tools accept) in a subuid or
// subgid file, or of every user. A missing file is no entry; an unreadable or malformed line is an
// error naming the file and line.
Result<std::vector<SubIdEntry>> read_subid_entries(const std::string &path, const std::string &user,
                                                   uid_t uid, bool every_user = false);

// When root has no subordinate ids at all (Debian's useradd gives root none) and no --id-range is
// given: 1000000000:1000000000, above every range useradd hands out (SUB_UID_MAX 600100000 in
// Debian's login.defs) and below 2^31 (tools that take ids as signed 32-bit numbers). Incus falls
// back to 1000000:1000000000 the same way; ours starts higher so that it never meets useradd's.
inline constexpr uint64_t kDefaultIdPoolStart = 1000000000, kDefaultIdPoolCount = 1000000000;

// "BASE:COUNT" (the --id-range of bulkheadd): the same block for uids and gids.
Result<SubIdEntry> parse_id_range(const std::string &text);

// configured: --id-range (empty: none). It wins over the files (the operator named it for this
// daemon); otherwise root's entries of both files; when root has none in either, the default pool
// (unless another user's entry reaches into it: an error that says what to add).
Result<IdPool> load_id_pool(const std::string &configured, const std::string &subuid_path,
                            const std::string &subgid_path);

// The first block of kIdRangeSize uids and gids in the pool that overlaps none of `used` (the
// ranges of the other containers). None left: ENOSPC naming the pool and how many it holds.
Result<IdMap> allocate_id_range(const IdPool &pool, const std::vector<IdMap> &used);

// Exactly `want` (a container arriving with its memory from another host: CRIU's images carry its
// user namespace's map, so it cannot change range): it must lie inside the pool's uid and gid
// entries (else ENOSPC) and overlap none of `used` (else EBUSY), each error naming the range.
Result<IdMap> claim_id_range(const IdPool &pool, const std::vector<IdMap> &used, const IdMap &want);

// The shift that moves files written in range `from` (the source's record, or an export's
// manifest, {"container": {"idmap": ...}}) into range `to` (this host's): none when either side is
// privileged or both are the same range.
std::optional<storage::IdShift> id_shift(const std::optional<IdMap> &from, const std::optional<IdMap> &to);
std::optional<IdMap> idmap_of_manifest(const nlohmann::json &manifest);
// {"uid": N, "gid": N, "size"?: N} (size 65536 when absent), each an unsigned 32-bit number; else none.
std::optional<IdMap> idmap_from_json(const nlohmann::json &m);

} // namespace bulkhead::daemon
