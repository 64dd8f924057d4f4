#!/usr/bin/env bash
# containerd (Debian's package) with its runc shim configured for the systemd cgroup driver
# (`ctr run --runc-systemd-cgroup`, the shim's SystemdCgroup option, which makes it call the
# runtime with --systemd-cgroup) and bulkhead as the runc binary. Runs in the systemd VM after
# vm-systemd-cgroup.sh (run-vm-systemd-cgroup.sh starts both).
# Usage: vm-containerd-systemd.sh BULKHEAD_BINARY IMAGE_TAR
set -euo pipefail
bh_bin=$1 image_tar=$2
IMAGE=localhost/bulkhead-busybox:latest # what tests/clients/make-image.py names it
W=$(mktemp -d /tmp/bh-ctrd.XXXXXX)
runc_root=$W/runc
daemon_pid=
t0=$(date +%s%N)
step() { echo "== containerd: $* ($((($(date +%s%N) - t0) / 1000000)) ms)"; }
fail() {
  echo "FAIL: $*" >&2
  tail -n 30 "$W/containerd.log" >&2 || true
  exit 1
}
expect_eq() { [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"; echo "ok: $1 = $2"; }
prop() { systemctl show -P "$2" "$1"; }
cleanup() {
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  pkill -KILL -f "containerd-shim-runc-v2 -namespace bh-sd" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$W/lib" "$W/run"
cat >"$W/config.toml" <<TOML
version = 2
root = "$W/lib"
state = "$W/run"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/run/containerd.sock"
[ttrpc]
  address = "$W/run/containerd.sock.ttrpc"
TOML
ctr_() { ctr --address "$W/run/containerd.sock" --namespace bh-sd "$@"; }
RUN=(--runtime io.containerd.runc.v2 --runc-binary "$bh_bin" --runc-root "$runc_root" --runc-systemd-cgroup)

step "starting $(containerd --version | awk '{print $1, $3}')"
containerd --config "$W/config.toml" --log-level info >"$W/containerd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 300); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ version >/dev/null || fail "containerd did not come up"
ctr_ images import --all-platforms "$image_tar" >/dev/null || fail "ctr images import"

step "ctr run --rm --runc-systemd-cgroup --cgroup machine.slice:ctr:sd1 --memory-limit 64M"
rc=0
out=$(ctr_ run --rm "${RUN[@]}" --cgroup machine.slice:ctr:sd1 --memory-limit 67108864 "$IMAGE" sd1 \
  sh -c 'cat /proc/self/cgroup; exit 4') || rc=$?
echo "$out"
expect_eq "exit status through the shim" "$rc" 4
expect_eq "cgroup of the process" "$(tail -n 1 <<<"$out")" "0::/machine.slice/ctr-sd1.scope"
expect_eq "LoadState after ctr run --rm" "$(prop ctr-sd1.scope LoadState)" not-found

step "ctr run -d, then the scope from systemctl, pause/resume, kill, delete"
ctr_ run -d "${RUN[@]}" --cgroup machine.slice:ctr:sd2 --memory-limit 67108864 "$IMAGE" sd2 sleep 100000
for _ in $(seq 150); do [[ $(ctr_ t ls | awk '$1 == "sd2" {print $3}') == RUNNING ]] && break; sleep 0.2; done
systemctl show --no-pager -p Id -p ActiveState -p Delegate -p MemoryMax -p ControlGroup ctr-sd2.scope
expect_eq "Delegate" "$(prop ctr-sd2.scope Delegate)" yes
expect_eq "MemoryMax" "$(prop ctr-sd2.scope MemoryMax)" 67108864
expect_eq "memory.max" "$(cat /sys/fs/cgroup/machine.slice/ctr-sd2.scope/memory.max)" 67108864
expect_eq "bulkhead's record" "$(jq -r .cgroup_driver "$runc_root/bh-sd/sd2/state.json")" systemd
ctr_ t pause sd2
expect_eq "task after pause" "$(ctr_ t ls | awk '$1 == "sd2" {print $3}')" PAUSED
ctr_ t resume sd2
ctr_ t kill -s SIGKILL sd2
for _ in $(seq 150); do [[ $(ctr_ t ls | awk '$1 == "sd2" {print $3}') == STOPPED ]] && break; sleep 0.2; done
ctr_ t delete sd2
ctr_ c delete sd2
expect_eq "LoadState after delete" "$(prop ctr-sd2.scope LoadState)" not-found
[[ ! -e /sys/fs/cgroup/machine.slice/ctr-sd2.scope ]] || fail "ctr-sd2.scope's cgroup left behind"
step "done"
echo "PASS: containerd with SystemdCgroup"
