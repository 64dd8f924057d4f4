#!/usr/bin/env bash
# The systemd cgroup driver scenario (tests/systemd/vm-systemd-cgroup.sh) in the VM booted with
# systemd as PID 1 (tests/vm/run-in-vm.sh --systemd), with the bulkhead binary of BUILD_DIR.
# Then, when containerd is installed, vm-containerd-systemd.sh in the same boot: containerd's
# runc shim with SystemdCgroup running bulkhead. Before the VM, on a host without systemd as PID 1 (this project's CI machines), checks that
# --systemd-cgroup is a clear error there and leaves nothing behind.
# Usage: tests/systemd/run-vm-systemd-cgroup.sh [BUILD_DIR]   (BULKHEAD_VM_TIMEOUT, default 900 s)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
[[ -x $build/cli/bulkhead ]] || { echo "run-vm-systemd-cgroup: $build/cli/bulkhead not built" >&2; exit 125; }
start=$(date +%s)

# The VM mounts fresh /tmp and /run: stage the binary under /var/tmp.
stage=$(mktemp -d /var/tmp/bulkhead-vm-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkhead" "$stage/bulkhead"
# containerd's runc shim with SystemdCgroup (vm-containerd-systemd.sh), when Debian's containerd is
# installed (tests/clients/run-client-tests.sh installs it); skipped otherwise, said so.
with_containerd=0
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  with_containerd=1
  /usr/bin/python3 "$repo/tests/clients/make-image.py" "$stage/image.tar" >/dev/null
else
  echo "run-vm-systemd-cgroup: containerd is not installed: its SystemdCgroup part is skipped"
fi

if [[ ! -d /run/systemd/system ]]; then
  echo "== host without systemd: --systemd-cgroup must fail clearly and leave nothing"
  mkdir -p "$stage/bundle/rootfs"
  (cd "$stage/bundle" && "$stage/bulkhead" spec && jq '.process.terminal = false' config.json >c && mv c config.json)
  rc=0
  out=$("$stage/bulkhead" --root "$stage/state" --systemd-cgroup create -b "$stage/bundle" nosd 2>&1) || rc=$?
  echo "exit $rc: $out"
  [[ $rc != 0 && $out == *"systemd is not running on this host (/run/systemd/system)"* ]] ||
    { echo "FAIL: want a clear 'systemd is not running' error" >&2; exit 1; }
  [[ -z $(ls -A "$stage/state" 2>/dev/null) ]] || { echo "FAIL: state left in $stage/state" >&2; exit 1; }
  echo "ok: refused, nothing left"
fi

cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --systemd --timeout "${BULKHEAD_VM_TIMEOUT:-900}" -- \
    bash -c 'bash "$1/vm-systemd-cgroup.sh" "$2" && { (($3 == 0)) || bash "$1/vm-containerd-systemd.sh" "$2" "$4"; }' \
    _ "$here" "$stage/bulkhead" "$with_containerd" "$stage/image.tar" || rc=$?
  # 124/125 are the test bed's (a VM that did not boot or stopped making progress): boot once more.
  [[ ($rc == 125 || $rc == 124) && $attempt == 1 ]] || break
  echo "run-vm-systemd-cgroup: the VM failed ($rc); retrying once" >&2
done
echo "run-vm-systemd-cgroup: exit $rc after $(($(date +%s) - start)) s" >&2
exit "$rc"
