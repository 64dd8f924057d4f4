#!/usr/bin/env bash
# Failover benchmark (bench/failover/README.md): the cost of continuous replication to a running
# container (pause and bytes per round) and of a host's death (recovery time, work lost), for
# 64 and 256 MiB containers replicated every 1, 2 and 5 s in memory mode, against restart from
# disk (--mode disk), on the multi-host bed with etcd in the cgroup v2 VM of tests/vm (QEMU TCG).
# Never an assertion.
#
#   bash bench/failover/run.sh [BUILD_DIR] [--cases "MODE:MIB:INTERVAL ..."] [--rounds N]
#                              [--host-cpus "host1=0 host2=1"]
#
# --host-cpus gives each simulated host its own CPUs (a cpuset on its cgroup subtree,
# tests/multihost/lib.sh MH_HOST_CPUS), as two machines have; by default both hosts share the
# VM's two vCPUs, and the standby's work (receiving, flattening) runs beside the source's dumps.
#
# Uses the bulkheadd, bulkheadctl and bulkhead-monitor of BUILD_DIR as they are (build them first).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/build rounds=8 host_cpus=""
cases="memory:64:1 memory:64:2 memory:64:5 memory:256:1 memory:256:2 memory:256:5 disk:64:2 disk:256:2"
while (($#)); do
  case $1 in
  --cases) cases=$2; shift ;;
  --rounds) rounds=$2; shift ;;
  --host-cpus) host_cpus=$2; shift ;;
  *) build=$1 ;;
  esac
  shift
done
build=$(cd "$build" && pwd)
# shellcheck source=../multihost-stage.sh
source "$repo/bench/multihost-stage.sh"
bench_stage failover "$build" "$here"
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/dirtier" "$repo/tests/multihost/dirtier.c"
cd "$stage"
echo "bench/failover: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-5400}" --mem 6G -- \
  bash "$stage/vm-bench.sh" "$stage" "$stage/make-busybox-rootfs.sh" "$cases" "$rounds" "$host_cpus"
echo "bench/failover: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
