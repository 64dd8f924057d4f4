#!/usr/bin/env bash
# Runs tests/migration/vm-criu.sh (OCI checkpoint/restore with CRIU) and vm-daemon-checkpoint.sh
# (bulkheadd's checkpoint, restore, stop --stateful) in one boot of the cgroup v2 VM with the
# binaries of BUILD_DIR. CRIU 3.17 needs the guest's Debian 6.1 kernel (it refuses newer ones).
# Usage: tests/migration/run-vm-criu.sh [BUILD_DIR] [oci|daemon|unprivileged]   (default: all three;
# daemon = bulkheadd's scenario with a privileged container, unprivileged = the same scenario with
# c1 in its own user namespace)
# Takes about 160 s of VM time on an idle 2-core host (TCG); 9 min when the host is loaded.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
command -v criu >/dev/null || { echo "run-vm-criu: criu is not installed (apt-get install criu)" >&2; exit 125; }
# The VM mounts fresh /tmp and /run: stage under /var/tmp (as run-cgroup-tests.sh).
stage=$(mktemp -d /var/tmp/bulkhead-vm-criu.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkhead" "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" \
  "$here/vm-criu.sh" "$here/vm-daemon-checkpoint.sh" "$repo/tests/storage/make-busybox-rootfs.sh" \
  "$repo/tests/vm/ext4-root.sh" "$stage/"
which=${2:-both}
cat >"$stage/all.sh" <<SH
set -e
[[ $which != both && $which != oci ]] || bash "$stage/vm-criu.sh" "$stage" "$stage/make-busybox-rootfs.sh"
[[ $which != both && $which != daemon ]] || bash "$stage/vm-daemon-checkpoint.sh" "$stage" "$stage/make-busybox-rootfs.sh"
[[ $which != both && $which != unprivileged ]] || bash "$stage/vm-daemon-checkpoint.sh" "$stage" "$stage/make-busybox-rootfs.sh" unprivileged
SH
cd "$stage"
start=$(date +%s)
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --force-vm --mem 2G --timeout "${BULKHEAD_VM_TIMEOUT:-1500}" -- \
    bash "$stage/all.sh" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-criu: the VM failed (125); retrying once" >&2
done
echo "run-vm-criu: exit $rc after $(($(date +%s) - start)) s" >&2
exit "$rc"
