#!/usr/bin/env bash
# Runs tests/daemon/vm-network.sh in the VM with the binaries of BUILD_DIR.
# Usage: tests/daemon/run-vm-network.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp.
stage=$(mktemp -d /var/tmp/bulkhead-vm-net.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here/vm-network.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-1200}" --mem 2G -- \
    bash "$stage/vm-network.sh" "$stage" "$stage/make-busybox-rootfs.sh" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-network: the VM failed (125); retrying once" >&2
done
exit "$rc"
