#include "cgroups/device_filter.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fmt/format.h>
#include <linux/magic.h>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroups/digest.hpp"

namespace bulkhead::cgroups {

namespace {

constexpr uint8_t kReg0 = 0, kCtx = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kScratch = 1;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

bpf_insn load_u32(uint8_t dst, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, kCtx, off, 0); }
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) {
  return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn ret(int32_t value) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, kReg0, 0, 0, value); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Forward jumps to labels that are placed later; patched once the label's position is known.
class Emitter {
public:
  size_t new_label() {
    labels_.push_back(-1);
    return labels_.size() - 1;
  }
  void place(size_t label) { labels_[label] = static_cast<long>(code_.size()); }
  void emit(bpf_insn i) { code_.push_back(i); }
  void jump(uint8_t op, uint8_t reg, int32_t imm, size_t label) {
    fixups_.push_back({code_.size(), label});
    code_.push_back(insn(BPF_JMP | op | (op == BPF_JA ? 0 : BPF_K), reg, 0, 0, imm));
  }
  Result<std::vector<bpf_insn>> finish() {
    for (auto [at, label] : fixups_) {
      long off = labels_[label] - static_cast<long>(at) - 1;
      if (labels_[label] < 0 || off < 0 || off > INT16_MAX)
        return fail("device filter: jump out of range");
      code_[at].off = static_cast<int16_t>(off);
    }
    return std::move(code_);
  }

private:
  std::vector<bpf_insn> code_;
  std::vector<long> labels_;
  std::vector<std::pair<size_t, size_t>> fixups_;
};

struct Rule {
  bool allow;
  int32_t type;         // 0 = any
  int64_t major, minor; // -1 = any
  uint32_t access;
};

Result<Rule> to_rule(const oci::DeviceCgroupRule &r, size_t index) {
  Rule out{r.allow, 0, r.major.value_or(-1), r.minor.value_or(-1), 0};
  if (r.type == "c")
    out.type = BPF_DEVCG_DEV_CHAR;
  else if (r.type == "b")
    out.type = BPF_DEVCG_DEV_BLOCK;
  else if (!r.type.empty() && r.type != "a")
    return failf("linux.resources.devices[{}].type: {:?} is not one of \"a\", \"c\", \"b\"", index, r.type);
  for (char c : r.access.empty() ? std::string("rwm") : r.access) {
    if (c == 'r')
      out.access |= BPF_DEVCG_ACC_READ;
    else if (c == 'w')
      out.access |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm')
      out.access |= BPF_DEVCG_ACC_MKNOD;
    // Other letters are ignored, as runc does ("rwa" is common); create warns about them
    // (device_rule_warnings).
  }
  for (int64_t v : {out.major, out.minor})
    if (v > INT32_MAX)
      return failf("linux.resources.devices[{}]: device number {} is out of range", index, v);
  if (out.major < 0)
    out.major = -1;
  if (out.minor < 0)
    out.minor = -1;
  return out;
}

long bpf(int cmd, bpf_attr &attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

std::string_view bytes_of(const std::vector<bpf_insn> &program) {
  return {reinterpret_cast<const char *>(program.data()), program.size() * sizeof(bpf_insn)};
}

struct ProgInfo {
  uint32_t type = 0, id = 0;
  std::array<uint8_t, BPF_TAG_SIZE> tag{};
};

std::optional<ProgInfo> prog_info(int fd) {
  bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.info.bpf_fd = static_cast<uint32_t>(fd);
  a.info.info_len = sizeof info;
  a.info.info = reinterpret_cast<uint64_t>(&info);
  if (bpf(BPF_OBJ_GET_INFO_BY_FD, a) < 0)
    return std::nullopt;
  ProgInfo out{info.type, info.id, {}};
  std::memcpy(out.tag.data(), info.tag, BPF_TAG_SIZE);
  return out;
}

// Whether the kernel's tag of a loaded program says it holds exactly `program`: the kernel
// computes the tag itself at load time from the instructions it was given.
bool holds(const ProgInfo &info, const std::vector<bpf_insn> &program) {
  if (info.type != BPF_PROG_TYPE_CGROUP_DEVICE)
    return false;
  auto bytes = bytes_of(program);
  // Kernels before 6.18 tag with SHA-1: compute it only when the SHA-256 tag does not match.
  auto s256 = sha256(bytes);
  if (std::equal(info.tag.begin(), info.tag.end(), s256.begin()))
    return true;
  auto s1 = sha1(bytes);
  return std::equal(info.tag.begin(), info.tag.end(), s1.begin());
}

constexpr const char *kBpffs = "/sys/fs/bpf";
constexpr const char *kPinDir = "/sys/fs/bpf/bulkhead";

bool bpffs_mounted() {
  struct statfs st {};
  return ::statfs(kBpffs, &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

// A pinned program, reopened by id: BPF_PROG_GET_FD_BY_ID returns only programs, whatever kind of
// object the pin held. nullopt unless it holds `program`.
std::optional<std::pair<UniqueFd, uint32_t>> cached_filter(const std::string &path,
                                                           const std::vector<bpf_insn> &program) {
  bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.pathname = reinterpret_cast<uint64_t>(path.c_str());
  UniqueFd pinned(static_cast<int>(bpf(BPF_OBJ_GET, a)));
  if (!pinned)
    return std::nullopt;
  auto info = prog_info(pinned.get());
  if (!info)
    return std::nullopt;
  bpf_attr g;
  std::memset(&g, 0, sizeof g);
  g.prog_id = info->id;
  UniqueFd prog(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, g)));
  if (!prog)
    return std::nullopt;
  auto checked = prog_info(prog.get());
  if (!checked || checked->id != info->id || !holds(*checked, program))
    return std::nullopt;
  return std::pair{std::move(prog), checked->id};
}

} // namespace

std::string device_filter_pin_path(const std::vector<bpf_insn> &program) {
  auto digest = sha256(bytes_of(program));
  std::string hex;
  for (size_t i = 0; i < 16; ++i)
    hex += fmt::format("{:02x}", digest[i]);
  return fmt::format("{}/devices-{}", kPinDir, hex);
}

Result<std::pair<UniqueFd, uint32_t>> device_filter_fd(const std::vector<bpf_insn> &program) {
  bool cache = bpffs_mounted();
  std::string path = cache ? device_filter_pin_path(program) : "";
  if (cache) {
    if (auto hit = cached_filter(path, program))
      return std::move(*hit);
    // Missing, or not the program its name promises (stale, or put there by someone else).
    ::unlink(path.c_str());
  }
  UniqueFd prog = BH_TRY(load_device_filter(program));
  auto info = prog_info(prog.get());
  if (!info)
    return failf_errno("reading the id of the device filter");
  // Pin only what a later create can verify: a kernel whose tag is neither digest gets no cache.
  if (cache && holds(*info, program)) {
    if (::mkdir(kPinDir, 0700) == 0 || errno == EEXIST) {
      bpf_attr a;
      std::memset(&a, 0, sizeof a);
      a.pathname = reinterpret_cast<uint64_t>(path.c_str());
      a.bpf_fd = static_cast<uint32_t>(prog.get());
      bpf(BPF_OBJ_PIN, a); // EEXIST: a concurrent create pinned the same program first
    }
  }
  return std::pair{std::move(prog), info->id};
}

Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceCgroupRule> &rules) {
  std::vector<Rule> parsed;
  for (size_t i = 0; i < rules.size(); ++i)
    parsed.push_back(BH_TRY(to_rule(rules[i], i)));

  Emitter e;
  e.emit(load_u32(kType, offsetof(bpf_cgroup_dev_ctx, access_type)));
  e.emit(alu32_imm(BPF_AND, kType, 0xffff));
  e.emit(load_u32(kAccess, offsetof(bpf_cgroup_dev_ctx, access_type)));
  e.emit(alu32_imm(BPF_RSH, kAccess, 16));
  e.emit(load_u32(kMajor, offsetof(bpf_cgroup_dev_ctx, major)));
  e.emit(load_u32(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)));
  for (uint32_t kind : {BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE}) {
    size_t next_kind = e.new_label();
    e.emit(mov32_reg(kScratch, kAccess));
    e.emit(alu32_imm(BPF_AND, kScratch, static_cast<int32_t>(kind)));
    e.jump(BPF_JEQ, kScratch, 0, next_kind);
    bool decided = false; // a rule matching every device ends the search
    for (auto it = parsed.rbegin(); it != parsed.rend() && !decided; ++it) {
      const Rule &r = *it;
      if (!(r.access & kind))
        continue;
      size_t next_rule = e.new_label();
      if (r.type != 0)
        e.jump(BPF_JNE, kType, r.type, next_rule);
      if (r.major >= 0)
        e.jump(BPF_JNE, kMajor, static_cast<int32_t>(r.major), next_rule);
      if (r.minor >= 0)
        e.jump(BPF_JNE, kMinor, static_cast<int32_t>(r.minor), next_rule);
      bool conditional = r.type != 0 || r.major >= 0 || r.minor >= 0;
      if (r.allow) {
        // Unconditional allow falls through to next_kind: nothing follows it in this kind.
        if (conditional)
          e.jump(BPF_JA, 0, 0, next_kind);
      } else {
        e.emit(ret(0));
        e.emit(exit_insn());
      }
      e.place(next_rule);
      decided = !conditional;
    }
    if (!decided) {
      e.emit(ret(0));
      e.emit(exit_insn());
    }
    e.place(next_kind);
  }
  e.emit(ret(1));
  e.emit(exit_insn());
  return e.finish();
}

Result<UniqueFd> load_device_filter(const std::vector<bpf_insn> &program) {
  static const char license[] = "Apache-2.0";
  auto load = [&](char *log, uint32_t log_size) {
    bpf_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(program.data());
    attr.insn_cnt = static_cast<uint32_t>(program.size());
    attr.license = reinterpret_cast<uint64_t>(license);
    std::memcpy(attr.prog_name, "bulkhead_devs", sizeof "bulkhead_devs");
    if (log) {
      attr.log_buf = reinterpret_cast<uint64_t>(log);
      attr.log_size = log_size;
      attr.log_level = 1;
    }
    return static_cast<int>(bpf(BPF_PROG_LOAD, attr));
  };
  int fd = load(nullptr, 0);
  if (fd >= 0)
    return UniqueFd(fd);
  int saved = errno;
  if (saved == EPERM)
    return fail("loading the device filter (eBPF BPF_PROG_TYPE_CGROUP_DEVICE): needs CAP_SYS_ADMIN or "
                "CAP_BPF (and, before Linux 5.11, enough RLIMIT_MEMLOCK)",
                saved);
  std::string log(64 * 1024, '\0');
  fd = load(log.data(), static_cast<uint32_t>(log.size()));
  if (fd >= 0)
    return UniqueFd(fd); // a transient failure
  saved = errno;
  log.resize(std::strlen(log.c_str()));
  while (!log.empty() && log.back() == '\n')
    log.pop_back();
  for (auto &c : log)
    if (c == '\n')
      c = ';';
  return fail(fmt::format("loading the device filter (eBPF, {} instructions){}", program.size(),
                          log.empty() ? "" : " (verifier: " + log + ")"),
              saved);
}

Status attach_device_filter(int cgroup_fd, const std::string &cgroup_path,
                            const std::vector<oci::DeviceCgroupRule> &rules) {
  auto program = BH_TRY(device_filter_program(rules));
  auto [prog, prog_id] = BH_TRY(device_filter_fd(program));

  // The programs in place now (none on a fresh cgroup; the previous rules on update).
  std::vector<uint32_t> old_ids(64);
  bpf_attr q;
  std::memset(&q, 0, sizeof q);
  q.query.target_fd = static_cast<uint32_t>(cgroup_fd);
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = reinterpret_cast<uint64_t>(old_ids.data());
  q.query.prog_cnt = static_cast<uint32_t>(old_ids.size());
  if (bpf(BPF_PROG_QUERY, q) < 0)
    return failf_errno("querying the device programs of cgroup {}", cgroup_path);
  old_ids.resize(q.query.prog_cnt);
  // A shared program may already be attached (update with the same rules): the kernel refuses
  // to attach it twice, and detaching it as "old" would leave the cgroup without a filter.
  bool attached = std::find(old_ids.begin(), old_ids.end(), prog_id) != old_ids.end();
  std::vector<UniqueFd> old;
  for (uint32_t id : old_ids) {
    if (id == prog_id)
      continue;
    bpf_attr g;
    std::memset(&g, 0, sizeof g);
    g.prog_id = id;
    UniqueFd fd(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, g)));
    if (!fd) {
      if (errno == ENOENT)
        continue; // detached meanwhile
      return failf_errno("opening device program {} of cgroup {}", id, cgroup_path);
    }
    old.push_back(std::move(fd));
  }

  bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.target_fd = static_cast<uint32_t>(cgroup_fd);
  a.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (!attached && bpf(BPF_PROG_ATTACH, a) < 0)
    return failf_errno("attaching the device filter (eBPF BPF_CGROUP_DEVICE) to cgroup {}", cgroup_path);

  for (const auto &fd : old) {
    bpf_attr d;
    std::memset(&d, 0, sizeof d);
    d.target_fd = static_cast<uint32_t>(cgroup_fd);
    d.attach_bpf_fd = static_cast<uint32_t>(fd.get());
    d.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, d) < 0 && errno != ENOENT)
      return failf_errno("detaching the previous device filter from cgroup {}", cgroup_path);
  }
  return {};
}

} // namespace bulkhead::cgroups
