#include "security/seccomp_enosys.hpp"

#include <cerrno>
#include <cstddef>
#include <linux/audit.h>
#include <linux/seccomp.h>

namespace bulkhead::security {

namespace {

constexpr uint32_t kX32SyscallBit = 0x40000000;

sock_filter stmt(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
sock_filter jump(uint16_t code, uint32_t k, size_t from, size_t jt, size_t jf) {
  // Classic BPF jumps are relative to the next instruction; the stub is far below 255 entries.
  return sock_filter{code, static_cast<uint8_t>(jt - from - 1), static_cast<uint8_t>(jf - from - 1), k};
}

} // namespace

std::vector<sock_filter> with_enosys_stub(const std::vector<ArchLimit> &limits,
                                          const std::vector<sock_filter> &program) {
  if (limits.empty())
    return program;
  // Layout: load arch; per architecture [jeq arch, load nr, (x86_64: jset x32), jgt max];
  // ja program; ret ENOSYS; program.
  size_t size = 1;
  for (const auto &l : limits)
    size += l.audit_arch == AUDIT_ARCH_X86_64 ? 4 : 3;
  const size_t enosys = size + 1, start = size + 2;

  std::vector<sock_filter> out;
  out.reserve(start + program.size());
  out.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  for (const auto &l : limits) {
    size_t block = out.size();
    size_t next = block + (l.audit_arch == AUDIT_ARCH_X86_64 ? 4 : 3);
    out.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, l.audit_arch, block, block + 1, next));
    out.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    if (l.audit_arch == AUDIT_ARCH_X86_64)
      out.push_back(jump(BPF_JMP | BPF_JSET | BPF_K, kX32SyscallBit, out.size(), start, out.size() + 1));
    out.push_back(jump(BPF_JMP | BPF_JGT | BPF_K, l.max_nr, out.size(), enosys, start));
  }
  out.push_back(stmt(BPF_JMP | BPF_JA, static_cast<uint32_t>(start - out.size() - 1)));
  out.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  out.insert(out.end(), program.begin(), program.end());
  return out;
}

} // namespace bulkhead::security
