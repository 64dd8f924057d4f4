#!/usr/bin/env bash
# What CRIU's network lock costs a running container's checkpoint (docs/checkpoint.md "No lock
# for a running container without connections"): `bulkheadctl checkpoint` (leaving the container
# running) of one container, alternately without a TCP connection (CRIU runs in its network
# namespace: no lock) and with one idle connection from a client (the namespace handed to CRIU as
# external and locked, the connection saved: every checkpoint before this change), in the cgroup v2
# VM of tests/vm (QEMU TCG) on the multi-host bed. Alternating in one VM keeps its speed, which
# varies about 2x from boot to boot, out of the comparison. Never an assertion.
#
#   bash bench/network-lock/run.sh [BUILD_DIR] [--runs N]     (default: build, 8 pairs)
#
# Uses the bulkheadd, bulkheadctl and bulkhead-monitor of BUILD_DIR as they are (build them first).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/build runs=8
while (($#)); do
  case $1 in
  --runs) runs=$2; shift ;;
  *) build=$1 ;;
  esac
  shift
done
build=$(cd "$build" && pwd)
# shellcheck source=../multihost-stage.sh
source "$repo/bench/multihost-stage.sh"
bench_stage netlock "$build" "$here"
cd "$stage"
"$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-1800}" --mem 4G -- \
  bash "$stage/vm-bench.sh" "$stage" "$stage/make-busybox-rootfs.sh" "$runs"
