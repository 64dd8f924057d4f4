#!/bin/bash
# `bulkheadctl net attach/detach` on a running container: wall time per call (bulkheadctl to
# answer, so HTTP + IPAM writes + netlink), median and p90 over N runs, for a bridged NIC.
# Everything runs in a private network namespace (unshare -n): the host's network is untouched
# and every link goes with that netns. Not a test: nothing is asserted.
# Usage (root, from the repository): bash bench/nic_hotplug.sh BUILD_DIR [RUNS=50]
set -eu
if [ "${1:-}" = "" ]; then
  echo "usage: $0 BUILD_DIR [RUNS]" >&2
  exit 2
fi
build=$(realpath "$1")
runs=${2:-50}
if [ "${BH_IN_NETNS:-}" != 1 ]; then
  exec env BH_IN_NETNS=1 unshare -n -- bash "$0" "$@"
fi
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /var/tmp/bh-nicbench-XXXXXX)
sock=$dir/bulkheadd.sock
ctl() { "$build/cli/bulkheadctl" --socket "$sock" "$@"; }
daemon=
cleanup() {
  ctl destroy b1 --force >/dev/null 2>&1 || true
  ctl destroy b2 --force >/dev/null 2>&1 || true
  ctl network rm lan0 >/dev/null 2>&1 || true
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$dir"
  rmdir "/sys/fs/cgroup/bulkhead-nicbench-$$" "/sys/fs/cgroup/unified/bulkhead-nicbench-$$" 2>/dev/null || true
}
trap cleanup EXIT
ip link set lo up
sh "$here/tests/storage/make-busybox-rootfs.sh" "$dir/rootfs" >/dev/null
"$build/cli/bulkheadd" --root "$dir/root" --socket "$sock" --cgroup-parent "/bulkhead-nicbench-$$" --privileged-default \
  --foreground --no-lxcfs >"$dir/bulkheadd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctl list >/dev/null 2>&1 && break; sleep 0.1; done
ctl template import busybox "$dir/rootfs" >/dev/null
ctl network create lan0 --bridge --ipv4 198.18.77.1/24 --ipv6 fd42:77::1/64 >/dev/null
ctl create b1 --template busybox --net lan0 --start >/dev/null
ctl create b2 --template busybox --start >/dev/null

now() { date +%s%N; }
attach=() detach=()
for _ in $(seq "$runs"); do
  t0=$(now); ctl net attach b2 lan0 >/dev/null; t1=$(now)
  ctl exec b2 -- ping -c 1 -W 3 198.18.77.2 >/dev/null # the NIC works before it goes again
  t2=$(now); ctl net detach b2 eth0 >/dev/null; t3=$(now)
  attach+=($(((t1 - t0) / 1000))) detach+=($(((t3 - t2) / 1000)))
done
t0=$(now); for _ in $(seq "$runs"); do ctl list >/dev/null; done; t1=$(now)
stats() { # name, microsecond samples: median and p90 in ms
  local name=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v n="$name" '{a[NR]=$1} END {
    printf "%-34s median %6.2f ms   p90 %6.2f ms   (n=%d)\n", n, a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000, NR}'
}
stats "net attach (bridged, running)" "${attach[@]}"
stats "net detach (bridged, running)" "${detach[@]}"
printf '%-34s mean   %6.2f ms\n' "bulkheadctl list (the client floor)" "$(echo "($t1 - $t0) / $runs / 1000000" | bc -l)"
