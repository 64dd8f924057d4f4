#include "daemon/id_ranges.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <unistd.h>

#include <fmt/core.h>

namespace bulkhead::daemon {

namespace {

bool overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; }

// The starts of every whole aligned-to-the-entry block of kIdRangeSize ids in the entries, in order.
std::vector<uint64_t> blocks(const std::vector<SubIdEntry> &entries) {
  std::vector<uint64_t> out;
  for (const auto &e : entries)
    for (uint64_t off = 0; off + kIdRangeSize <= e.count; off += kIdRangeSize)
      out.push_back(e.start + off);
  return out;
}

} // namespace

Result<std::vector<SubIdEntry>> read_subid_entries(const std::string &path, const std::string &user,
                                                   uid_t uid, bool every_user) {
  std::vector<SubIdEntry> out;
  if (::access(path.c_str(), F_OK) < 0 && errno == ENOENT)
    return out;
  std::ifstream in(path);
  if (!in)
    return failf_errno("reading {}", path);
  static const std::regex line_re(R"(^([^:#\s][^:]*):([0-9]{1,10}):([0-9]{1,10})$)");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#')
      continue;
    std::smatch m;
    if (!std::regex_match(line, m, line_re))
      return fail(fmt::format("{} line {}: \"{}\" is not NAME:START:COUNT", path, n, line), EINVAL);
    if (!every_user && m[1].str() != user && m[1].str() != std::to_string(uid))
      continue;
    SubIdEntry e{std::stoull(m[2].str()), std::stoull(m[3].str())};
    // Id 0 is root itself, and ids from 2^32-1 on are invalid (-1 is "no id").
    if (e.start == 0 || e.start + e.count > (uint64_t{1} << 32) - 1)
      return fail(fmt::format("{} line {}: the range {}:{} includes id 0 or ids past 4294967294", path, n,
                              e.start, e.count),
                  EINVAL);
    out.push_back(e);
  }
  return out;
}

Result<SubIdEntry> parse_id_range(const std::string &text) {
  static const std::regex re(R"(^([0-9]{1,10}):([0-9]{1,10})$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    return fail(fmt::format("id range \"{}\": expected BASE:COUNT, e.g. 100000:6553600", text), EINVAL);
  SubIdEntry e{std::stoull(m[1].str()), std::stoull(m[2].str())};
  if (e.start == 0 || e.start + e.count > (uint64_t{1} << 32) - 1)
    return fail(fmt::format("id range \"{}\" includes id 0 or ids past 4294967294", text), EINVAL);
  if (e.count < kIdRangeSize)
    return fail(fmt::format("id range \"{}\" holds {} ids, fewer than the {} of one container", text, e.count,
                            kIdRangeSize),
                EINVAL);
  return e;
}

Result<IdPool> load_id_pool(const std::string &configured, const std::string &subuid_path,
                            const std::string &subgid_path) {
  IdPool pool;
  if (!configured.empty()) {
    auto e = BH_TRY(parse_id_range(configured));
    pool.uids = pool.gids = {e};
    pool.source = "bulkheadd --id-range " + configured;
    return pool;
  }
  pool.uids = BH_TRY(read_subid_entries(subuid_path, "root", 0));
  pool.gids = BH_TRY(read_subid_entries(subgid_path, "root", 0));
  pool.source = "root's entries in " + subuid_path + " and " + subgid_path;
  if (pool.uids.empty() && pool.gids.empty()) {
    // Root has none (Debian's useradd adds none for root): the daemon's own pool, above every
    // range useradd hands out, as long as no entry of another user reaches into it.
    SubIdEntry def{kDefaultIdPoolStart, kDefaultIdPoolCount};
    for (const auto &path : {subuid_path, subgid_path})
      for (const auto &e : BH_TRY(read_subid_entries(path, "", 0, true)))
        if (overlaps(e.start, e.count, def.start, def.count))
          return fail(fmt::format("unprivileged containers need ids for their user namespaces: root has no "
                                  "range in {} and {}, and bulkheadd's default pool {}:{} overlaps the entry "
                                  "{}:{} of {} (give root a range of its own, e.g. \"root:{}:{}\" in both, "
                                  "or start bulkheadd with --id-range)",
                                  subuid_path, subgid_path, def.start, def.count, e.start, e.count, path,
                                  def.start, def.count),
                      EOPNOTSUPP);
    pool.uids = pool.gids = {def};
    pool.source = fmt::format("bulkheadd's default id pool {}:{} (root has no range in {} and {})", def.start,
                              def.count, subuid_path, subgid_path);
    return pool;
  }
  if (blocks(pool.uids).empty() || blocks(pool.gids).empty())
    return fail(
        fmt::format("unprivileged containers need ids for their user namespaces: root has no range "
                    "of at least {} ids in {} and {} (add e.g. \"root:1000000:65536000\" to both) and "
                    "bulkheadd has no --id-range; or create the container --privileged",
                    kIdRangeSize, subuid_path, subgid_path),
        EOPNOTSUPP); // this daemon cannot make one (HTTP 501), whatever the request
  return pool;
}

Result<IdMap> allocate_id_range(const IdPool &pool, const std::vector<IdMap> &used) {
  auto uids = blocks(pool.uids), gids = blocks(pool.gids);
  // Block i of the uids goes with block i of the gids, so a container's uid and gid bases stay in
  // step when both files name the same ranges (the usual case).
  size_t n = std::min(uids.size(), gids.size());
  for (size_t i = 0; i < n; ++i) {
    bool taken = false;
    for (const auto &u : used)
      if (overlaps(uids[i], kIdRangeSize, u.uid, u.size) || overlaps(gids[i], kIdRangeSize, u.gid, u.size)) {
        taken = true;
        break;
      }
    if (!taken)
      return IdMap{static_cast<uint32_t>(uids[i]), static_cast<uint32_t>(gids[i]), kIdRangeSize};
  }
  return fail(fmt::format("no free id range: {} holds {} range(s) of {} ids and every one is used by another "
                          "container (destroy one, or give root more subordinate ids)",
                          pool.source, n, kIdRangeSize),
              ENOSPC);
}

Result<IdMap> claim_id_range(const IdPool &pool, const std::vector<IdMap> &used, const IdMap &want) {
  auto inside = [](const std::vector<SubIdEntry> &entries, uint64_t start, uint64_t count) {
    for (const auto &e : entries)
      if (start >= e.start && start + count <= e.start + e.count)
        return true;
    return false;
  };
  std::string what =
      fmt::format("id range uids {}-{}, gids {}-{}", want.uid, uint64_t{want.uid} + want.size - 1, want.gid,
                  uint64_t{want.gid} + want.size - 1);
  if (want.size == 0 || !inside(pool.uids, want.uid, want.size) || !inside(pool.gids, want.gid, want.size))
    return fail(fmt::format("{} is not inside {}", what, pool.source), ENOSPC);
  for (const auto &u : used)
    if (overlaps(want.uid, want.size, u.uid, u.size) || overlaps(want.gid, want.size, u.gid, u.size))
      return fail(fmt::format("{} overlaps the range of another container here (uids {}-{})", what, u.uid,
                              uint64_t{u.uid} + u.size - 1),
                  EBUSY);
  return want;
}

std::optional<storage::IdShift> id_shift(const std::optional<IdMap> &from, const std::optional<IdMap> &to) {
  if (!from || !to || (from->uid == to->uid && from->gid == to->gid))
    return std::nullopt;
  return storage::IdShift{from->uid, from->gid, to->uid, to->gid, std::min(from->size, to->size)};
}

std::optional<IdMap> idmap_from_json(const nlohmann::json &m) {
  auto id = [&](const char *key) -> std::optional<uint32_t> {
    auto it = m.find(key);
    if (it == m.end() || !it->is_number_integer())
      return std::nullopt;
    if (!it->is_number_unsigned() && it->get<int64_t>() < 0)
      return std::nullopt;
    uint64_t v = it->get<uint64_t>();
    if (v > UINT32_MAX)
      return std::nullopt;
    return static_cast<uint32_t>(v);
  };
  if (!m.is_object())
    return std::nullopt;
  auto uid = id("uid"), gid = id("gid");
  auto size = m.contains("size") ? id("size") : std::optional<uint32_t>(kIdRangeSize);
  if (!uid || !gid || !size)
    return std::nullopt;
  return IdMap{*uid, *gid, *size};
}

std::optional<IdMap> idmap_of_manifest(const nlohmann::json &manifest) {
  auto c = manifest.find("container");
  if (c == manifest.end() || !c->is_object() || !c->contains("idmap"))
    return std::nullopt;
  return idmap_from_json((*c)["idmap"]);
}

} // namespace bulkhead::daemon
