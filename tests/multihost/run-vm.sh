#!/usr/bin/env bash
# Runs the multi-host scenario tests/multihost/vm-NAME.sh (tests/multihost/lib.sh) in the cgroup v2
# VM with the binaries of BUILD_DIR; a VM that fails to boot (125) is retried once.
# Usage: tests/multihost/run-vm.sh NAME [BUILD_DIR] [TIMEOUT_S]
#   (the run-vm-NAME.sh scripts call this; BULKHEAD_VM_TIMEOUT overrides TIMEOUT_S, default 600)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=${1:?usage: run-vm.sh NAME [BUILD_DIR] [TIMEOUT_S]}
[[ -f $here/vm-$name.sh ]] || { echo "run-vm: no scenario $here/vm-$name.sh" >&2; exit 2; }
build=$(cd "${2:-$repo/build}" && pwd)
timeout=${BULKHEAD_VM_TIMEOUT:-${3:-600}}
# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp (as run-vm-nat.sh).
stage=$(mktemp -d "/var/tmp/bulkhead-vm-$name.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here"/vm-*.sh "$here/lib.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$repo/tests/vm/ext4-root.sh" "$stage/"
# A process that keeps and rewrites memory, for scenarios that need one (the template is busybox).
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/dirtier" "$here/dirtier.c"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "$timeout" --mem 2G -- \
    bash "$stage/vm-$name.sh" "$stage" "$stage/make-busybox-rootfs.sh" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm: $name: the VM failed (125); retrying once" >&2
done
exit "$rc"
