#!/usr/bin/env bash
# Runs tests/daemon/vm-scenario.sh in the cgroup v2 VM with the binaries of BUILD_DIR.
# Usage: tests/daemon/run-vm-scenario.sh [BUILD_DIR] [N] [privileged|unprivileged]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
n=${2:-50}
mode=${3:-privileged}
# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp (as run-cgroup-tests.sh).
stage=$(mktemp -d /var/tmp/bulkhead-vm-daemon.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here/vm-scenario.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$repo/tests/vm/ext4-root.sh" "$stage/"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-1500}" --mem 3G -- \
    bash "$stage/vm-scenario.sh" "$stage" "$stage/make-busybox-rootfs.sh" "$n" "$mode" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-scenario: the VM failed (125); retrying once" >&2
done
exit "$rc"
