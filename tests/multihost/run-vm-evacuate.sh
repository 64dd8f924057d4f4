#!/usr/bin/env bash
# Runs tests/multihost/vm-evacuate.sh (evacuation of a simulated host, tests/multihost/lib.sh) in the cgroup
# v2 VM with the binaries of BUILD_DIR.
# Usage: tests/multihost/run-vm-evacuate.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp (as run-vm-nat.sh).
stage=$(mktemp -d /var/tmp/bulkhead-vm-evacuate.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here/vm-evacuate.sh" "$here/lib.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-900}" --mem 2G -- \
    bash "$stage/vm-evacuate.sh" "$stage" "$stage/make-busybox-rootfs.sh" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-evacuate: the VM failed (125); retrying once" >&2
done
exit "$rc"
