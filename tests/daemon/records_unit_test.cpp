// Records are the daemon's source of truth: strict parsing, durable replacement, values.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon/container_config.hpp"
#include "daemon/container_disk.hpp"
#include "daemon/events.hpp"
#include "daemon/id_ranges.hpp"
#include "daemon/operations.hpp"
#include "daemon/record_store.hpp"

using namespace bulkhead::daemon;

TEST(ContainerConfigTest, SizesAndPolicies) {
  EXPECT_EQ(*parse_size("256M"), 256u << 20);
  EXPECT_EQ(*parse_size("1G"), 1u << 30);
  EXPECT_EQ(*parse_size("1.5K"), 1536u);
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("2GiB"), 2ull << 30);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("-1M"));
  EXPECT_FALSE(parse_size("99999999999T"));
  EXPECT_EQ(parse_restart_policy("on-failure:3")->max_retries, 3);
  EXPECT_EQ(parse_restart_policy("always")->kind, RestartPolicy::Kind::Always);
  EXPECT_FALSE(parse_restart_policy("on-failure:"));
  EXPECT_FALSE(parse_restart_policy("sometimes"));
  EXPECT_EQ(restart_policy_text(*parse_restart_policy("on-failure:5")), "on-failure:5");
}

TEST(ContainerConfigTest, RoundTripAndStrictness) {
  ContainerConfig c;
  c.name = "web1";
  c.template_name = "debian";
  c.limits.memory_bytes = 256u << 20;
  c.limits.cpus = 0.5;
  c.env = {"A=1"};
  c.restart = *parse_restart_policy("on-failure:2");
  auto back = config_from_json(to_json(c));
  ASSERT_TRUE(back) << back.error().text();
  EXPECT_EQ(back->limits.memory_bytes, c.limits.memory_bytes);
  EXPECT_EQ(back->limits.cpus, 0.5);
  EXPECT_FALSE(back->limits.pids);
  EXPECT_EQ(back->restart.max_retries, 2);
  auto j = to_json(c);
  j["surprise"] = 1;
  auto bad = config_from_json(j);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("surprise"), std::string::npos);
}

TEST(ContainerConfigTest, PortForwardsRoundTripAndOutOfRangeRecords) {
  ContainerConfig c;
  c.name = "web1";
  c.template_name = "busybox";
  EXPECT_FALSE(to_json(c).contains("ports")) << "records without forwards stay as they were";
  c.ports = {{8080, 80, "tcp", "wan0"}, {5353, 53, "udp", "wan0"}};
  auto back = config_from_json(to_json(c));
  ASSERT_TRUE(back) << back.error().text();
  ASSERT_EQ(back->ports.size(), 2u);
  EXPECT_EQ(back->ports[1].host_port, 5353);
  EXPECT_EQ(back->ports[1].container_port, 53);
  EXPECT_EQ(back->ports[1].proto, "udp");
  EXPECT_EQ(back->ports[1].network, "wan0");
  for (auto [key, value] : {std::pair<const char *, nlohmann::json>{"host_port", 0},
                            {"host_port", 65536},
                            {"container_port", 70000},
                            {"proto", "sctp"},
                            {"host_port", "80"}}) {
    auto j = to_json(c);
    j["ports"][0][key] = value;
    EXPECT_FALSE(config_from_json(j)) << key << " " << value;
  }
}

TEST(ContainerDiskTest, StorageAndDiskLimitsRoundTripAndParse) {
  ContainerConfig c;
  c.name = "q1";
  c.template_name = "debian";
  EXPECT_FALSE(to_json(c).contains("disk")); // records of quota-less containers stay as they were
  auto plain = config_from_json(to_json(c));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->storage, "dir");
  c.storage = "ext4";
  c.disk.bytes = 2ull << 30;
  c.disk.inodes = 100000;
  auto back = config_from_json(to_json(c));
  ASSERT_TRUE(back) << back.error().text();
  EXPECT_EQ(back->storage, "ext4");
  EXPECT_EQ(back->disk.bytes, 2ull << 30);
  EXPECT_EQ(back->disk.inodes, 100000u);

  using nlohmann::json;
  EXPECT_EQ(*disk_bytes_field(json("2G")), 2ull << 30);
  EXPECT_EQ(*disk_bytes_field(json(64u << 20)), 64u << 20);
  for (const json &bad : {json("2X"), json("-1G"), json(true), json(-5), json("1M"), json(4096)}) {
    auto r = disk_bytes_field(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("disk"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(*disk_inodes_field(json(1000)), 1000u);
  for (const json &bad : {json(0), json(-1), json("1000"), json(1.5), json(1ull << 40)})
    EXPECT_FALSE(disk_inodes_field(bad)) << bad;

  auto dir = disk_limits_for_create("dir", json{{"disk", "2G"}}, 10ull << 30);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().message.find("--storage dir"), std::string::npos) << dir.error().message;
  EXPECT_FALSE(disk_limits_for_create("dir", json::object(), 10ull << 30)->bytes);
  auto dflt = disk_limits_for_create("ext4", json{{"disk_inodes", 5000}}, 10ull << 30);
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->bytes, 10ull << 30);
  EXPECT_EQ(dflt->inodes, 5000u);
  auto unknown = container_disk("zfs");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("zfs"), std::string::npos);

  ContainerConfig dc;
  dc.storage = "dir";
  auto refused = change_disk_limit(dc, RecordStore("/nonexistent").paths("x"), 1ull << 30);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("no disk quota"), std::string::npos) << refused.error().message;
}

TEST(RecordStoreTest, SaveLoadRemoveAndTornRecords) {
  char tmpl[] = "/tmp/bhd-records-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  RecordStore store(root);
  ASSERT_TRUE(store.init_dirs());
  ContainerRecord r;
  r.config.name = "a1";
  r.config.template_name = "t";
  r.status.state = "running";
  r.status.restarts = 3;
  r.status.init_pid = 42;
  std::filesystem::create_directories(store.paths("a1").dir);
  ASSERT_TRUE(store.save(r));
  auto back = store.load("a1");
  ASSERT_TRUE(back) << back.error().text();
  EXPECT_EQ(back->status.restarts, 3);
  EXPECT_EQ(back->status.init_pid, 42);
  // No temp file stays next to the record.
  EXPECT_FALSE(std::filesystem::exists(store.paths("a1").dir + "/.container.json.tmp"));
  // A record someone truncated by hand is reported, never half-loaded.
  std::filesystem::create_directories(store.paths("b1").dir);
  std::ofstream(store.paths("b1").record) << "{\"config\": {\"name\": \"b1\"";
  std::vector<std::string> bad;
  auto all = store.load_all(&bad);
  EXPECT_EQ(all.size(), 1u);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("b1"), std::string::npos);
  // remove never follows a symlink out of the container's directory.
  std::string outside = root + "/outside";
  std::filesystem::create_directories(outside);
  std::ofstream(outside + "/keep") << "x";
  std::filesystem::create_directory_symlink(outside, store.paths("a1").dir + "/link");
  ASSERT_TRUE(store.remove("a1"));
  EXPECT_FALSE(std::filesystem::exists(store.paths("a1").dir));
  EXPECT_TRUE(std::filesystem::exists(outside + "/keep"));
  std::filesystem::remove_all(root);
}

// Unprivileged containers' id ranges (daemon/id_ranges.hpp): root's entries only, blocks of
// 65536 that never overlap a used range, a clear error when none is left or none exists.
TEST(IdRangesTest, SubordinateIdsAllocationAndExhaustion) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "idranges";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "subuid") << "alice:100000:65536\nroot:200000:131072\n# note\n0:400000:65535\n";
  std::ofstream(dir / "subgid") << "root:300000:196608\n";
  std::ofstream(dir / "bad") << "root:12x:65536\n";
  auto uids = read_subid_entries(dir / "subuid", "root", 0);
  ASSERT_TRUE(uids) << uids.error().text();
  ASSERT_EQ(uids->size(), 2u); // root by name and by uid; alice's is not root's
  EXPECT_EQ((*uids)[0].start, 200000u);
  EXPECT_EQ((*uids)[1].count, 65535u);
  auto bad = read_subid_entries(dir / "bad", "root", 0);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().text().find("bad line 1"), std::string::npos) << bad.error().text();
  EXPECT_TRUE(read_subid_entries(dir / "missing", "root", 0)->empty());

  auto pool = load_id_pool("", dir / "subuid", dir / "subgid");
  ASSERT_TRUE(pool) << pool.error().text();
  std::vector<IdMap> used;
  auto a = allocate_id_range(*pool, used);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->uid, 200000u);
  EXPECT_EQ(a->gid, 300000u);
  EXPECT_EQ(a->size, 65536u);
  used.push_back(*a);
  auto b = allocate_id_range(*pool, used);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->uid, 265536u); // the 65535-id entry of uid 0 is too small for a block
  EXPECT_EQ(b->gid, 365536u);
  used.push_back(*b);
  auto c = allocate_id_range(*pool, used);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ENOSPC);
  EXPECT_NE(c.error().text().find("no free id range"), std::string::npos) << c.error().text();
  // A range used by a container of an older pool blocks every block it overlaps.
  used = {IdMap{230000, 300000, 65536}};
  auto d = allocate_id_range(*pool, used);
  ASSERT_FALSE(d); // block 0 overlaps in uids and gids, block 1 (265536) overlaps 230000+65536
  used = {IdMap{200000, 500000, 65536}};
  EXPECT_EQ(allocate_id_range(*pool, used)->uid, 265536u);

  // Root has no entry anywhere: bulkheadd's default pool, unless another user's entry reaches into it.
  auto none = load_id_pool("", dir / "missing", dir / "missing");
  ASSERT_TRUE(none) << none.error().text();
  EXPECT_EQ(allocate_id_range(*none, {})->uid, 1000000000u);
  EXPECT_NE(none->source.find("default id pool 1000000000:1000000000"), std::string::npos) << none->source;
  std::ofstream(dir / "alice") << "alice:1999990000:65536\n";
  auto clash = load_id_pool("", dir / "missing", dir / "alice");
  ASSERT_FALSE(clash);
  EXPECT_NE(clash.error().text().find("overlaps the entry 1999990000:65536 of"), std::string::npos)
      << clash.error().text();
  // Root in one file only: the file without it is the error.
  std::ofstream(dir / "rootonly") << "root:100000:65536\n";
  auto half = load_id_pool("", dir / "rootonly", dir / "missing");
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().text().find("root has no range"), std::string::npos) << half.error().text();
  auto configured = load_id_pool("1000000:65536", dir / "missing", dir / "missing");
  ASSERT_TRUE(configured);
  EXPECT_EQ(allocate_id_range(*configured, {})->uid, 1000000u);
  EXPECT_FALSE(parse_id_range("0:65536"));
  EXPECT_FALSE(parse_id_range("100000:100"));
  EXPECT_FALSE(parse_id_range("4294967000:65536"));
  EXPECT_FALSE(parse_id_range("100000"));

  // Kept in the record: round trip, and a map onto host root is refused.
  ContainerConfig cfg;
  cfg.name = "u";
  cfg.template_name = "t";
  cfg.idmap = IdMap{100000, 100000, 65536};
  auto back = config_from_json(to_json(cfg));
  ASSERT_TRUE(back) << back.error().text();
  ASSERT_TRUE(back->idmap);
  EXPECT_EQ(back->idmap->uid, 100000u);
  auto j = to_json(cfg);
  j["idmap"]["uid"] = 0;
  EXPECT_FALSE(config_from_json(j));
  cfg.idmap.reset();
  EXPECT_FALSE(to_json(cfg).contains("idmap"));
}

TEST(EventBusTest, SubscribersGetEventsAndSlowOnesAreToldOfLosses) {
  EventBus bus;
  auto s = bus.subscribe();
  bus.publish("container-started", "x", {{"pid", 1}});
  auto line = s->next(100);
  ASSERT_TRUE(line);
  auto j = nlohmann::json::parse(*line);
  EXPECT_EQ(j["action"], "container-started");
  EXPECT_EQ(j["name"], "x");
  EXPECT_FALSE(s->next(10));
  for (int i = 0; i < 1100; ++i)
    bus.publish("container-updated", "x");
  auto first = nlohmann::json::parse(*s->next(10));
  EXPECT_EQ(first["action"], "events-lost");
  EXPECT_EQ(first["detail"]["count"], 76);
  bus.unsubscribe(s);
}

TEST(OperationsTest, ProgressWaitAndCancel) {
  Operations ops;
  auto op = ops.start("slow", "/1.0/x", [](Operation &o) -> bulkhead::Status {
    for (int i = 0; i < 500; ++i) {
      o.set_progress("working", i, 500);
      if (o.cancelled())
        return bulkhead::fail("cancelled", ECANCELED);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
  });
  EXPECT_FALSE(op->wait(20));
  EXPECT_EQ(op->to_json()["status"], "running");
  EXPECT_TRUE(ops.cancel(op->id()));
  EXPECT_TRUE(op->wait(5000));
  EXPECT_EQ(op->to_json()["status"], "cancelled");
  EXPECT_FALSE(ops.cancel(op->id()));
  auto ok = ops.start("quick", "/1.0/y", [](Operation &) -> bulkhead::Status { return {}; });
  EXPECT_TRUE(ok->wait(-1));
  EXPECT_EQ(ok->to_json()["status"], "success");
  EXPECT_EQ(ok->to_json()["progress"]["percent"], 100);
  ops.drain();
}

// An exact range (a container arriving with its memory keeps its ids): inside the pool and free,
// else an error naming it; and the shift that moves an export's files into another range.
TEST(IdRangesTest, ClaimAnExactRangeAndShiftIntoAnother) {
  IdPool pool;
  pool.uids = pool.gids = {SubIdEntry{100000, 196608}};
  pool.source = "bulkheadd --id-range 100000:196608";
  std::vector<IdMap> used = {IdMap{100000, 100000, 65536}};
  auto got = claim_id_range(pool, used, IdMap{165536, 165536, 65536});
  ASSERT_TRUE(got) << got.error().text();
  EXPECT_EQ(got->uid, 165536u);
  auto taken = claim_id_range(pool, used, IdMap{100000, 100000, 65536});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, EBUSY);
  EXPECT_NE(taken.error().message.find("id range uids 100000-165535"), std::string::npos)
      << taken.error().text();
  auto outside = claim_id_range(pool, used, IdMap{250000, 250000, 65536}); // runs past 296607
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ENOSPC);
  EXPECT_NE(outside.error().message.find("is not inside bulkheadd --id-range"), std::string::npos);

  // The API's and a migration's {"uid", "gid", "size"?}: unsigned 32-bit numbers or nothing.
  auto parsed = idmap_from_json(nlohmann::json{{"uid", 100000}, {"gid", 200000}});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->gid, 200000u);
  EXPECT_EQ(parsed->size, 65536u);
  EXPECT_FALSE(idmap_from_json(nlohmann::json{{"uid", 100000}, {"gid", "200000"}}));
  EXPECT_FALSE(idmap_from_json(nlohmann::json{{"uid", -1}, {"gid", 1}}));
  EXPECT_FALSE(idmap_from_json(nlohmann::json{{"uid", 4294967296ull}, {"gid", 1}}));
  EXPECT_FALSE(idmap_from_json(nlohmann::json{{"uid", 1}, {"gid", 1}, {"size", "big"}}));
  EXPECT_FALSE(idmap_from_json(nlohmann::json::array()));

  EXPECT_FALSE(id_shift(IdMap{100000, 100000, 65536}, IdMap{100000, 100000, 65536}));
  EXPECT_FALSE(id_shift(std::nullopt, IdMap{100000, 100000, 65536}));
  auto shift = id_shift(IdMap{100000, 200000, 65536}, IdMap{300000, 400000, 65536});
  ASSERT_TRUE(shift);
  bulkhead::storage::Entry e;
  e.uid = 100005;
  e.gid = 200007;
  // security.capability v3: magic 0x03000000 | effective, permitted, inheritable, rootid 100000.
  std::string cap(24, '\0');
  cap[3] = 0x03;
  cap[0] = 0x01;
  cap[4] = 0x00, cap[5] = 0x20; // CAP_NET_RAW (13)
  cap[20] = static_cast<char>(100000 & 0xFF), cap[21] = static_cast<char>((100000 >> 8) & 0xFF),
  cap[22] = static_cast<char>((100000 >> 16) & 0xFF);
  e.xattrs = {{"security.capability", cap}, {"user.note", "x"}};
  shift->apply(e);
  EXPECT_EQ(e.uid, 300005u);
  EXPECT_EQ(e.gid, 400007u);
  uint32_t root = static_cast<unsigned char>(e.xattrs[0].second[20]) |
                  static_cast<unsigned char>(e.xattrs[0].second[21]) << 8 |
                  static_cast<unsigned char>(e.xattrs[0].second[22]) << 16 |
                  static_cast<unsigned char>(e.xattrs[0].second[23]) << 24;
  EXPECT_EQ(root, 300000u);
  EXPECT_EQ(e.xattrs[0].second.substr(0, 20), cap.substr(0, 20));
  // Ids outside the source range (none a container makes) stay.
  bulkhead::storage::Entry other;
  other.uid = 0;
  other.gid = 65534;
  shift->apply(other);
  EXPECT_EQ(other.uid, 0u);
  EXPECT_EQ(other.gid, 65534u);
}
