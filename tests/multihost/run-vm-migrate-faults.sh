#!/usr/bin/env bash
# Runs tests/multihost/vm-migrate-faults.sh (faults injected into live migrations, tests/multihost/lib.sh) in the cgroup
# v2 VM with the binaries of BUILD_DIR.
# Usage: tests/multihost/run-vm-migrate-faults.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp (as run-vm-nat.sh).
stage=$(mktemp -d /var/tmp/bulkhead-vm-migrate-faults.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here/vm-migrate-faults.sh" "$here/lib.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/"
# The containers' process (a busybox template has no compiler).
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/dirtier" "$here/dirtier.c"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-600}" --mem 2G -- \
    bash "$stage/vm-migrate-faults.sh" "$stage" "$stage/make-busybox-rootfs.sh" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-migrate-faults: the VM failed (125); retrying once" >&2
done
exit "$rc"
