// Value parsing of the cgroup subcommands: update's flags, --interval, ps arguments and output.
#include <gtest/gtest.h>

#include "cli/cgroup_flags.hpp"

namespace bulkhead::cli {
namespace {

std::string mem(const std::string &text) {
  auto r = parse_memory_size(text);
  return r ? std::to_string(*r) : "error: " + r.error().message;
}

TEST(CgroupsCliFlags, MemorySizes) {
  EXPECT_EQ(mem("1048576"), "1048576");
  EXPECT_EQ(mem("-1"), "-1");
  EXPECT_EQ(mem("512k"), "524288");
  EXPECT_EQ(mem("48m"), "50331648");
  EXPECT_EQ(mem("48M"), "50331648");
  EXPECT_EQ(mem("1g"), "1073741824");
  EXPECT_EQ(mem("1GB"), "1073741824");
  EXPECT_EQ(mem("1GiB"), "1073741824");
  EXPECT_EQ(mem("1.5g"), "1610612736");
  EXPECT_EQ(mem("2t"), "2199023255552");
  EXPECT_EQ(mem("100b"), "100");
  EXPECT_EQ(mem("lots"), "error: \"lots\" is not a size (like 512m, 1g or a byte count)");
  EXPECT_EQ(mem("5x"), "error: \"5x\": unknown unit \"x\" (use b, k, m, g, t or p)");
}

std::string dur(const std::string &text) {
  auto r = parse_duration_ms(text);
  return r ? std::to_string(*r) : "error: " + r.error().message;
}

TEST(CgroupsCliFlags, Durations) {
  EXPECT_EQ(dur("5s"), "5000");
  EXPECT_EQ(dur("100ms"), "100");
  EXPECT_EQ(dur("1m30s"), "90000");
  EXPECT_EQ(dur("1.5s"), "1500");
  EXPECT_EQ(dur("1h"), "3600000");
  EXPECT_EQ(dur("5"), "error: --interval: \"5\" is not a duration (like 5s or 500ms)");
  EXPECT_EQ(dur("s"), "error: --interval: \"s\" is not a duration (like 5s or 500ms)");
}

TEST(CgroupsCliFlags, UpdateFlagsBuildResources) {
  auto r = resources_from_flags({}, {{"memory", "48m"},
                                     {"memory-swap", "-1"},
                                     {"memory-reservation", "16m"},
                                     {"cpu-quota", "20000"},
                                     {"cpu-period", "100000"},
                                     {"cpu-share", "2048"},
                                     {"cpu-burst", "1000"},
                                     {"cpu-idle", "1"},
                                     {"cpuset-cpus", "0-1"},
                                     {"cpuset-mems", "0"},
                                     {"pids-limit", "-1"},
                                     {"blkio-weight", "300"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->memory->limit, 50331648);
  EXPECT_EQ(r->memory->swap, -1);
  EXPECT_EQ(r->memory->reservation, 16777216);
  EXPECT_EQ(r->cpu->quota, 20000);
  EXPECT_EQ(r->cpu->period, 100000u);
  EXPECT_EQ(r->cpu->shares, 2048u);
  EXPECT_EQ(r->cpu->burst, 1000u);
  EXPECT_EQ(r->cpu->idle, 1);
  EXPECT_EQ(r->cpu->cpus, "0-1");
  EXPECT_EQ(r->cpu->mems, "0");
  EXPECT_EQ(r->pids->limit, -1);
  EXPECT_EQ(r->block_io->weight, 300);

  // Flags override the --resources document; untouched sections stay.
  oci::Resources base;
  base.pids.emplace();
  base.pids->limit = 5;
  base.memory.emplace();
  base.memory->limit = 1;
  r = resources_from_flags(base, {{"memory", "2m"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->memory->limit, 2097152);
  EXPECT_EQ(r->pids->limit, 5);

  EXPECT_EQ(resources_from_flags({}, {{"cpu-period", "-5"}}).error().message,
            "--cpu-period: -5 must not be negative");
  EXPECT_EQ(resources_from_flags({}, {{"pids-limit", "ten"}}).error().message,
            "--pids-limit: \"ten\" is not an integer");
  EXPECT_EQ(resources_from_flags({}, {{"memory", "x"}}).error().message,
            "--memory: \"x\" is not a size (like 512m, 1g or a byte count)");
}

TEST(CgroupsCliFlags, SplitPsArgs) {
  std::set<std::string> value_flags = {"--root", "-f", "--format"};
  std::vector<std::string> args = {"--root", "/run/x", "ps", "-f", "table", "c1", "-ef"};
  EXPECT_EQ(split_ps_args(args, value_flags), (std::vector<std::string>{"-ef"}));
  EXPECT_EQ(args, (std::vector<std::string>{"--root", "/run/x", "ps", "-f", "table", "c1"}));
  args = {"ps", "c1", "--", "-o", "pid,comm"};
  EXPECT_EQ(split_ps_args(args, value_flags), (std::vector<std::string>{"-o", "pid,comm"}));
  args = {"ps", "c1"};
  EXPECT_TRUE(split_ps_args(args, value_flags).empty());
  args = {"kill", "c1", "-9"};
  EXPECT_TRUE(split_ps_args(args, value_flags).empty());
  EXPECT_EQ(args.size(), 3u);
}

TEST(CgroupsCliFlags, FilterPsOutput) {
  std::string ps = "UID        PID  PPID  C STIME TTY          TIME CMD\n"
                   "root         1     0  0 10:00 ?        00:00:01 /sbin/init\n"
                   "root      3319     1  0 10:26 ?        00:00:00 sleep 1000\n"
                   "root      3321  3319  0 10:26 ?        00:00:00 sleep 1000\n";
  auto r = filter_ps_output(ps, {3321, 3319});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "UID        PID  PPID  C STIME TTY          TIME CMD\n"
                "root      3319     1  0 10:26 ?        00:00:00 sleep 1000\n"
                "root      3321  3319  0 10:26 ?        00:00:00 sleep 1000\n");
  EXPECT_EQ(filter_ps_output("COMMAND\nsh\n", {1}).error().message,
            "ps output has no PID column (add pid to -o)");
}

} // namespace
} // namespace bulkhead::cli
