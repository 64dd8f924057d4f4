#!/usr/bin/env bash
# Where a running test VM's CPUs are: each vCPU's instruction pointer, sampled a few times through
# the VM's monitor socket (tests/vm/run-in-vm.sh makes one per run, and boots the guest with
# nokaslr), as the guest kernel's symbols (or "user" for a user-space address). Debian's
# /boot/System.map is a stub and the kernel image is stripped, so the symbols come from the
# guest's own /proc/kallsyms, saved once by `--save-kallsyms` (it boots a VM: never while
# another one runs).
# For a guest that went silent (no output, both vCPUs busy): a spin in the kernel shows as the
# same few symbols in every sample.
#   tests/vm/vm-where.sh [RUNDIR] [SAMPLES]
#   tests/vm/vm-where.sh --save-kallsyms
set -euo pipefail
map=/var/cache/bulkhead-vm/kallsyms-text
if [[ ${1:-} == --save-kallsyms ]]; then
  here=$(cd "$(dirname "$0")" && pwd)
  bash "$here/run-in-vm.sh" -- sh -c "grep -i ' [tw] ' /proc/kallsyms" >"$map.new"
  mv "$map.new" "$map"
  echo "vm-where: $(wc -l <"$map") symbols in $map"
  exit 0
fi
rundir=${1:-$(ls -dt /tmp/bulkhead-vm.*/ 2>/dev/null | head -1)}
samples=${2:-10}
sock=${rundir%/}/monitor.sock
[[ -S $sock ]] || { echo "vm-where: no monitor socket at $sock (is a VM running?)" >&2; exit 1; }
[[ -s $map ]] || { echo "vm-where: no $map (tests/vm/vm-where.sh --save-kallsyms): raw addresses" >&2; map=/dev/null; }
python3 - "$sock" "$map" "$samples" <<'PY'
import bisect, re, socket, sys, time
sock_path, map_path, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
addrs, names = [], []
for line in open(map_path):
    f = line.split()
    if len(f) >= 3 and f[1].lower() in ("t", "w"):
        addrs.append(int(f[0], 16)); names.append(f[2])
order = sorted(range(len(addrs)), key=addrs.__getitem__)
addrs = [addrs[i] for i in order]; names = [names[i] for i in order]
def sym(rip):
    if rip < 0xffff800000000000:
        return "user %#x" % rip
    i = bisect.bisect_right(addrs, rip) - 1
    return "%s+%#x" % (names[i], rip - addrs[i]) if i >= 0 else "%#x" % rip
def ask(cmd):
    s = socket.socket(socket.AF_UNIX); s.connect(sock_path); s.settimeout(5)
    out = b""
    def until_prompt():
        nonlocal out
        while not out.endswith(b"(qemu) "):
            out += s.recv(65536)
    until_prompt(); out = b""
    s.sendall(cmd.encode() + b"\n"); until_prompt(); s.close()
    return out.decode(errors="replace")
for k in range(samples):
    regs = ask("info registers -a")
    rips = [int(m, 16) for m in re.findall(r"RIP=([0-9a-f]{16})", regs)]
    print("sample %d: %s" % (k, "  |  ".join("cpu%d %s" % (i, sym(r)) for i, r in enumerate(rips))), flush=True)
    time.sleep(0.5)
PY
