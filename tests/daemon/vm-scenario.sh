#!/usr/bin/env bash
# The hosting story under real cgroup v2 (run inside tests/vm/run-in-vm.sh by run-vm-scenario.sh):
# N containers from one busybox template with limits, bulkheadd SIGKILLed and restarted with every
# container still running on the same pid, one init killed and brought back by its restart policy
# (restarts = 1), limits visible inside through lxcfs, a live limit change, and destroy of all
# leaving no mount, cgroup, process, upper directory or record behind.
# MODE "unprivileged" (docs/unprivileged.md): the same story with every container in its own user
# namespace and id range (bulkheadd --unprivileged-default), plus the ranges checked: root inside
# is the range's base outside, no two containers share a range, the cgroup is delegated.
# Usage: vm-scenario.sh BIN_DIR MAKE_ROOTFS_SCRIPT [N] [MODE]
set -euo pipefail
bin=$1 mkrootfs=$2 n=${3:-50} mode=${4:-privileged}
# /tmp: a tmpfs in the VM; overlayfs refuses an upper directory on the VM root (itself an overlay).
work=$(mktemp -d /tmp/bhd-vm.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
# Privileged: the daemon root on the VM's tmpfs, which Linux 6.1 cannot idmap (6.3 can).
daemon_flags=(--privileged-default)
if [[ $mode == unprivileged ]]; then
  # The template must be idmappable: the VM's 6.1 kernel idmaps ext4 but not tmpfs (6.3) nor the
  # 9p/overlay root, so the daemon's root is an ext4 image. The range roots must reach their
  # rootfs: every directory above the root is searchable (o+x).
  # shellcheck source=../vm/ext4-root.sh
  source "$(dirname "${BASH_SOURCE[0]}")/ext4-root.sh"
  ext4_root "$work" 4G
  root=$work/ext4/root
  daemon_flags=(--id-range "100000:$((n * 65536))" --unprivileged-default)
fi
# The daemon's own lxcfs mount point on the VM's tmpfs: the default /var/lib/lxcfs is the host's
# directory over 9p, where a dead lxcfs of the host (a stale FUSE mount) would break this test.
lxcfs_dir=$(mktemp -d /tmp/bhd-vm-lxcfs.XXXXXX)
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
fail() { echo "FAIL: $*" >&2; echo "--- daemon log" >&2; cat "$work/bulkheadd.log" >&2 || true; exit 1; }
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
t0=$(date +%s)

start_daemon() {
  "$bin/bulkheadd" --root "$root" --socket "$sock" --cgroup-parent /bulkhead-vm --lxcfs-dir "$lxcfs_dir" "${daemon_flags[@]}" >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}

sh "$mkrootfs" "$work/rootfs" >/dev/null
start_daemon
ctl template import busybox "$work/rootfs" >/dev/null
step "creating and starting $n containers (4 at a time)"
seq 1 "$n" | xargs -P 4 -I{} "$bin/bulkheadctl" --socket "$sock" create c{} --template busybox \
  --memory 256M --pids 200 --restart on-failure --start >/dev/null || fail "create --start"
running=$(ctl list --json | jq '[.[] | select(.state == "running")] | length')
[[ $running == "$n" ]] || fail "$running of $n running"
ctl list --json | jq -r '.[] | "\(.name) \(.pid)"' | sort >"$work/pids.before"
step "all $n running; $(ctl info c1 --json | jq -c '{pid, limits, usage}')"

if [[ $mode == unprivileged ]]; then
  pid1=$(ctl info c1 --json | jq .pid)
  base=$(ctl info c1 --json | jq .idmap.uid)
  [[ $(ctl info c1 --json | jq .privileged) == false ]] || fail "c1 is privileged"
  [[ $(awk '{print $1, $2, $3}' "/proc/$pid1/uid_map") == "0 $base 65536" ]] || fail "uid_map of c1: $(cat "/proc/$pid1/uid_map")"
  [[ $(stat -c %u "/proc/$pid1") == "$base" ]] || fail "init of c1 runs as uid $(stat -c %u "/proc/$pid1"), not $base"
  [[ $(ctl exec c1 -- id -u) == 0 ]] || fail "uid inside c1 is not 0"
  distinct=$(ctl list --json | jq '[.[].idmap.uid] | unique | length')
  [[ $distinct == "$n" ]] || fail "$distinct distinct ranges for $n containers"
  [[ $(stat -c %u /sys/fs/cgroup/bulkhead-vm/c1) == "$base" ]] || fail "the cgroup of c1 is not delegated to $base"
  ctl exec c1 -- sh -c 'echo hi >/hello' || fail "writing in c1"
  [[ $(stat -c %u "$root/containers/c1/disk/upper/hello") == "$base" ]] || fail "a file of c1 is not owned by $base"
  step "unprivileged: c1's init is uid $base on the host and 0 inside, its cgroup and files are $base's; $distinct distinct ranges"
fi

memmax=$(cat /sys/fs/cgroup/bulkhead-vm/c1/memory.max)
[[ $memmax == 268435456 ]] || fail "memory.max of c1 is $memmax"
[[ $(cat /sys/fs/cgroup/bulkhead-vm/c1/pids.max) == 200 ]] || fail "pids.max of c1"
# /proc/meminfo and /proc/uptime come from lxcfs. (busybox's free and uptime take their numbers from
# sysinfo(2), which no FUSE filesystem can change; procps' free, as in a Debian template, reads
# /proc/meminfo and shows the 256 MiB.)
memtotal=$(ctl exec c1 -- sh -c "awk '/^MemTotal:/ {print \$2}' /proc/meminfo")
[[ $memtotal == 262144 ]] || fail "MemTotal inside c1 is '$memtotal' kB, not 262144 (lxcfs)"
up=$(ctl exec c1 -- cut -d. -f1 /proc/uptime)
host_up=$(cut -d. -f1 /proc/uptime)
((up < host_up)) || fail "uptime inside ($up s) is the host's ($host_up s): lxcfs not in use"
step "inside c1: MemTotal $memtotal kB, uptime $up s (host $host_up s)"

step "SIGKILL bulkheadd and start it again"
kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
start_daemon
ctl list --json | jq -r '.[] | "\(.name) \(.pid)"' | sort >"$work/pids.after"
diff "$work/pids.before" "$work/pids.after" >/dev/null || fail "pids changed across the daemon restart"
running=$(ctl list --json | jq '[.[] | select(.state == "running")] | length')
[[ $running == "$n" ]] || fail "after restart: $running of $n running"
step "all $n still running on the same pids"

victim=c$(((n + 1) / 2))
old=$(ctl info "$victim" --json | jq .pid)
kill -9 "$old"
for _ in $(seq 1 300); do
  i=$(ctl info "$victim" --json)
  [[ $(jq -r .state <<<"$i") == running && $(jq .pid <<<"$i") != "$old" ]] && break
  sleep 0.1
done
[[ $(jq .restarts <<<"$i") == 1 ]] || fail "$victim: $(jq -c . <<<"$i")"
step "$victim: init $old killed, back as $(jq .pid <<<"$i") with restarts=1"

ctl set c2 --memory 128M
[[ $(cat /sys/fs/cgroup/bulkhead-vm/c2/memory.max) == 134217728 ]] || fail "set --memory not applied live"
[[ $(ctl info c2 --json | jq .limits.memory) == 134217728 ]] || fail "set --memory not saved"
# A limit below what the container uses is refused by name, and nothing changes.
ctl exec c2 -- dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null || fail "filling c2's /dev/shm"
if ctl set c2 --memory 8M 2>"$work/err"; then fail "set --memory 8M below usage was accepted"; fi
grep -q "below the container's current usage" "$work/err" || fail "unclear error: $(cat "$work/err")"
[[ $(cat /sys/fs/cgroup/bulkhead-vm/c2/memory.max) == 134217728 ]] || fail "a refused limit changed memory.max"
[[ $(ctl info c2 --json | jq .limits.memory) == 134217728 ]] || fail "a refused limit was saved"
step "live limit change applied; one below usage refused: $(cat "$work/err")"

step "destroy all"
ctl list --json | jq -r '.[].name' | xargs -P 4 -I{} "$bin/bulkheadctl" --socket "$sock" destroy {} --force ||
  fail "destroy"
[[ $(ctl list --json | jq length) == 0 ]] || fail "containers left"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
# Unprivileged mode: the daemon root's own ext4 mount is the test's, unmounted at the end.
left_mounts=$(awk -v w="$work" -v e="$work/ext4" 'index($5, w) == 1 && $5 != e' /proc/self/mountinfo | wc -l)
[[ $left_mounts == 0 ]] || fail "$left_mounts mounts left under $work"
left_cg=$(find /sys/fs/cgroup/bulkhead-vm -mindepth 1 -type d 2>/dev/null | wc -l)
[[ $left_cg == 0 ]] || fail "$left_cg cgroups left under /sys/fs/cgroup/bulkhead-vm"
pgrep -f bulkhead-monitor >/dev/null && fail "monitors left: $(pgrep -af bulkhead-monitor)"
[[ -z $(ls -A "$root/containers") ]] || fail "records left: $(ls "$root/containers")"
[[ -z $(ls -A "$root/sockets") ]] || fail "sockets left"
[[ -z $(ls -A "$root/oci") ]] || fail "runtime state left"
rmdir /sys/fs/cgroup/bulkhead-vm 2>/dev/null || true
if [[ $mode == unprivileged ]]; then
  umount "$work/ext4" || fail "unmounting the daemon root's ext4 image"
fi
step "nothing left: no mount, cgroup, process, upper directory or record"
echo "vm-scenario: PASS ($n $mode containers, $(($(date +%s) - t0)) s)"
