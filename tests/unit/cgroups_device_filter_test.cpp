// The device eBPF program, run through a small interpreter of the instructions it uses, against
// the OCI rule semantics (later rules win, per access kind; no match denies).
#include <gtest/gtest.h>

#include <cstring>

#include "cgroups/device_filter.hpp"
#include "cgroups/resources.hpp"

namespace bulkhead::cgroups {
namespace {

using Rules = std::vector<oci::DeviceCgroupRule>;
constexpr uint32_t M = BPF_DEVCG_ACC_MKNOD, R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE;
constexpr uint32_t BLK = BPF_DEVCG_DEV_BLOCK, CHR = BPF_DEVCG_DEV_CHAR;

oci::DeviceCgroupRule rule(bool allow, std::string type, std::optional<int64_t> major,
                           std::optional<int64_t> minor, std::string access) {
  return {allow, std::move(type), major, minor, std::move(access)};
}

// Returns the program's r0, or -1 when it does something the generator should never emit.
int run(const std::vector<bpf_insn> &prog, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  uint32_t ctx[3] = {(access << 16) | type, major, minor};
  uint64_t reg[11] = {};
  size_t pc = 0;
  for (int steps = 0; steps < 100000 && pc < prog.size(); ++steps) {
    const bpf_insn &i = prog[pc++];
    switch (i.code) {
    case BPF_LDX | BPF_MEM | BPF_W:
      if (i.src_reg != 1 || i.off < 0 || i.off > 8 || i.off % 4)
        return -1;
      reg[i.dst_reg] = ctx[i.off / 4];
      break;
    case BPF_ALU | BPF_AND | BPF_K:
      reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg] & static_cast<uint32_t>(i.imm));
      break;
    case BPF_ALU | BPF_RSH | BPF_K:
      reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg]) >> i.imm;
      break;
    case BPF_ALU | BPF_MOV | BPF_X:
      reg[i.dst_reg] = static_cast<uint32_t>(reg[i.src_reg]);
      break;
    case BPF_ALU64 | BPF_MOV | BPF_K:
      reg[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
      break;
    case BPF_JMP | BPF_JEQ | BPF_K:
      if (reg[i.dst_reg] == static_cast<uint64_t>(static_cast<int64_t>(i.imm)))
        pc += i.off;
      break;
    case BPF_JMP | BPF_JNE | BPF_K:
      if (reg[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm)))
        pc += i.off;
      break;
    case BPF_JMP | BPF_JA:
      pc += i.off;
      break;
    case BPF_JMP | BPF_EXIT:
      return static_cast<int>(reg[0]);
    default:
      return -1;
    }
  }
  return -1;
}

// The OCI semantics, written the obvious way.
int reference(const Rules &rules, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  for (uint32_t kind : {M, R, W}) {
    if (!(access & kind))
      continue;
    bool allowed = false;
    for (const auto &r : rules) {
      uint32_t rtype = r.type == "c" ? CHR : r.type == "b" ? BLK : 0;
      std::string acc = r.access.empty() ? "rwm" : r.access;
      bool names = (kind == M && acc.find('m') != std::string::npos) ||
                   (kind == R && acc.find('r') != std::string::npos) ||
                   (kind == W && acc.find('w') != std::string::npos);
      if (!names || (rtype && rtype != type) || (r.major && *r.major >= 0 && *r.major != major) ||
          (r.minor && *r.minor >= 0 && *r.minor != minor))
        continue;
      allowed = r.allow;
    }
    if (!allowed)
      return 0;
  }
  return 1;
}

void expect_matches_reference(const Rules &rules) {
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog) << prog.error().message;
  for (uint32_t type : {BLK, CHR})
    for (uint32_t access = 1; access <= 7; ++access)
      for (uint32_t major : {1u, 5u, 8u, 136u})
        for (uint32_t minor : {0u, 3u, 5u, 7u})
          ASSERT_EQ(run(*prog, type, access, major, minor), reference(rules, type, access, major, minor))
              << "type " << type << " access " << access << " " << major << ":" << minor;
}

TEST(CgroupsDeviceFilter, EmptyListDeniesEverything) {
  auto prog = device_filter_program({});
  ASSERT_TRUE(prog);
  EXPECT_EQ(run(*prog, CHR, R, 1, 3), 0);
  EXPECT_EQ(run(*prog, BLK, M, 8, 0), 0);
  expect_matches_reference({});
}

TEST(CgroupsDeviceFilter, DefaultContainerRules) {
  Rules rules = effective_device_rules({rule(false, "a", std::nullopt, std::nullopt, "rwm")});
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog);
  EXPECT_EQ(run(*prog, CHR, R | W, 1, 3), 1);   // /dev/null
  EXPECT_EQ(run(*prog, CHR, R | W, 5, 2), 1);   // /dev/ptmx
  EXPECT_EQ(run(*prog, CHR, R | W, 136, 7), 1); // /dev/pts/7
  EXPECT_EQ(run(*prog, BLK, M, 8, 0), 1);       // mknod of any node...
  EXPECT_EQ(run(*prog, BLK, R, 8, 0), 0);       // ...but no opening it
  EXPECT_EQ(run(*prog, BLK, R | M, 8, 0), 0);
  EXPECT_EQ(run(*prog, CHR, W, 1, 1), 0); // /dev/mem
  expect_matches_reference(rules);
}

TEST(CgroupsDeviceFilter, LaterRulesOverrideEarlierPerKind) {
  // Allow everything, then deny writes to 1:3: reads still pass, read+write does not.
  Rules rules = {rule(true, "a", std::nullopt, std::nullopt, "rwm"), rule(false, "c", 1, 3, "w")};
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog);
  EXPECT_EQ(run(*prog, CHR, R, 1, 3), 1);
  EXPECT_EQ(run(*prog, CHR, R | W, 1, 3), 0);
  EXPECT_EQ(run(*prog, CHR, R | W, 1, 5), 1);
  expect_matches_reference(rules);
  // Allowed piecewise: read from one rule, write from another.
  Rules split = {rule(false, "a", std::nullopt, std::nullopt, "rwm"), rule(true, "c", 1, 3, "r"),
                 rule(true, "c", 1, 3, "w")};
  prog = device_filter_program(split);
  ASSERT_TRUE(prog);
  EXPECT_EQ(run(*prog, CHR, R | W, 1, 3), 1);
  EXPECT_EQ(run(*prog, CHR, R | W | M, 1, 3), 0);
  expect_matches_reference(split);
}

TEST(CgroupsDeviceFilter, WildcardsAndTypes) {
  Rules rules = {rule(true, "c", 1, std::nullopt, "rw"),
                 rule(true, "b", std::nullopt, 0, "r"),
                 rule(false, "c", 1, 7, "r"),
                 rule(true, "", 136, std::nullopt, "m"),
                 rule(true, "a", std::nullopt, std::nullopt, ""),
                 rule(false, "b", 8, -1, "rwm")};
  expect_matches_reference(rules);
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog);
  EXPECT_EQ(run(*prog, BLK, R, 8, 3), 0);
  EXPECT_EQ(run(*prog, BLK, R, 5, 3), 1);
}

TEST(CgroupsDeviceFilter, UnconditionalRulesEndTheSearch) {
  // Nothing after an "allow all" may be emitted for that kind (the verifier rejects dead code):
  // the program stays small and still right.
  Rules rules = {rule(false, "c", 1, 3, "rwm"), rule(true, "a", std::nullopt, std::nullopt, "rwm")};
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog);
  EXPECT_EQ(prog->size(), 6u + 3 * 3 + 2);
  expect_matches_reference(rules);
}

TEST(CgroupsDeviceFilter, BadRules) {
  auto p = device_filter_program({rule(true, "x", std::nullopt, std::nullopt, "rwm")});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "linux.resources.devices[0].type: \"x\" is not one of \"a\", \"c\", \"b\"");
}

TEST(CgroupsDeviceFilter, UnknownAccessLettersAreIgnoredWithAWarning) {
  // runc accepts "rwa" (engines write it): the known letters count, the rest is warned about.
  Rules rules = {rule(true, "c", 1, 3, "rwa")};
  auto p = device_filter_program(rules);
  ASSERT_TRUE(p) << p.error().text();
  auto rw = device_filter_program({rule(true, "c", 1, 3, "rw")});
  ASSERT_TRUE(rw);
  ASSERT_EQ(p->size(), rw->size());
  EXPECT_EQ(std::memcmp(p->data(), rw->data(), p->size() * sizeof(bpf_insn)), 0);
  EXPECT_EQ(device_rule_warnings(rules),
            std::vector<std::string>{"linux.resources.devices[0].access: \"rwa\": letters other than r, w "
                                     "and m are ignored"});
  EXPECT_TRUE(device_rule_warnings({rule(true, "c", 1, 3, "rwm")}).empty());
}

TEST(CgroupsDeviceFilter, KernelAcceptsTheProgram) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "loading eBPF needs root";
  Rules rules = effective_device_rules({rule(false, "a", std::nullopt, std::nullopt, "rwm")});
  auto prog = device_filter_program(rules);
  ASSERT_TRUE(prog);
  auto fd = load_device_filter(*prog);
  if (!fd && fd.error().code == EPERM)
    GTEST_SKIP() << fd.error().text();
  ASSERT_TRUE(fd) << fd.error().text();
}

} // namespace
} // namespace bulkhead::cgroups
