#!/bin/bash
# Snapshot / export / import throughput of bulkheadd on this host (issue 12, bench note).
# Usage (root): bash bench/snapshots.sh [BUILD_DIR] [MIB]   defaults: build, 256
# Starts a private bulkheadd on a temporary --root under /var/tmp, fills a stopped busybox
# container's upper layer with MIB MiB of random data in 32 files plus 5000 small files, then
# times: snapshot (stopped), snapshot (running: the freeze lasts as long as the copy), full export
# (.tar and .tar.zst), import under a new name, incremental export after one change and its import.
# Prints bulkheadctl's own lines (sizes, seconds, rates). Removes everything it made.
set -euo pipefail
build=${1:-build}
mib=${2:-256}
ctl_bin=$(realpath "$build/cli/bulkheadctl")
daemon_bin=$(realpath "$build/cli/bulkheadd")
here=$(dirname "$(realpath "$0")")
dir=$(mktemp -d /var/tmp/bh-snapbench-XXXXXX)
sock=$dir/bulkheadd.sock
pid=
cleanup() {
  set +e
  for c in b1 b2; do "$ctl_bin" --socket "$sock" destroy "$c" --force >/dev/null 2>&1; done
  [ -n "$pid" ] && kill "$pid" && wait "$pid" 2>/dev/null
  rm -rf "$dir"
  # The daemon's (empty) cgroup parent, in whichever hierarchies it was made.
  find /sys/fs/cgroup -maxdepth 3 -type d -name "bulkhead-snapbench-$$" 2>/dev/null |
    while read -r cg; do find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null; done
}
trap cleanup EXIT
ctl() { "$ctl_bin" --socket "$sock" "$@"; }
t() { local s=$(date +%s.%N); "$@"; echo "  ($(echo "$(date +%s.%N) - $s" | bc) s wall)"; }

sh "$here/../tests/storage/make-busybox-rootfs.sh" "$dir/rootfs" >/dev/null
"$daemon_bin" --root "$dir/root" --socket "$sock" --cgroup-parent "/bulkhead-snapbench-$$" --privileged-default --foreground \
  --no-lxcfs >"$dir/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && ctl list >/dev/null 2>&1 && break; sleep 0.1; done
ctl template import busybox "$dir/rootfs" >/dev/null
ctl create b1 --template busybox >/dev/null
up=$dir/root/containers/b1/upper
mkdir -p "$up/data/big" "$up/data/small"
for i in $(seq 32); do head -c $((mib * 1024 * 1024 / 32)) /dev/urandom >"$up/data/big/f$i"; done
for i in $(seq 5000); do echo "small file $i" >"$up/data/small/s$i"; done
sync
echo "upper layer: $(du -sh "$up" | cut -f1), $(find "$up" | wc -l) entries"

echo "snapshot, stopped:"; t ctl snapshot create b1 s-stopped
ctl start b1 >/dev/null
echo "snapshot, running (frozen for the copy):"; t ctl snapshot create b1 s-running
echo "export, running (frozen copy first), uncompressed:"; t ctl export b1 "$dir/full.tar"
ctl stop b1 >/dev/null
echo "export, stopped, zstd:"; t ctl export b1 "$dir/full.tar.zst"
echo "import under a new name:"; t ctl import "$dir/full.tar" b2
echo "1" >>"$up/data/small/s1"
rm "$up/data/small/s2"
echo "incremental export (1 changed file, 1 deletion):"; t ctl export b1 "$dir/inc.tar" --incremental-from s-stopped
ctl export b1 "$dir/base.tar" --snapshot s-stopped >/dev/null
ctl destroy b2 >/dev/null
ctl import "$dir/base.tar" b2 >/dev/null
echo "incremental import (copies the base, applies, replaces the upper layer):"; t ctl import "$dir/inc.tar" b2
echo "restore, stopped:"; t ctl snapshot restore b1 s-running
ls -la "$dir"/*.tar* | awk '{print "  " $5 " " $9}'
