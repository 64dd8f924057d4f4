# shellcheck shell=bash
# Sourced by the run.sh of the benches on the multi-host VM bed (failover, migration,
# network-lock). bench_stage NAME BUILD_DIR BENCH_DIR: the daemon's binaries of BUILD_DIR, the
# bench's vm-bench.sh and the bed's scripts copied into a fresh $stage under /var/tmp (the VM
# mounts fresh /tmp and /run), removed when the script exits.
bench_stage() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  stage=$(mktemp -d "/var/tmp/bulkhead-bench-$1.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  cp "$2/cli/bulkheadd" "$2/cli/bulkheadctl" "$2/cli/bulkhead-monitor" "$stage/"
  cp "$3/vm-bench.sh" "$repo/tests/multihost/lib.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/"
}
