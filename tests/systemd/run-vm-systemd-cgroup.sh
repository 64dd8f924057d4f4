#!/usr/bin/env bash
# The systemd cgroup driver scenario (tests/systemd/vm-systemd-cgroup.sh) in the VM booted with
# systemd as PID 1 (tests/vm/run-in-vm.sh --systemd), with the binaries of BUILD_DIR, then in the
# same boot: bulkheadd on that systemd host (vm-daemon-systemd.sh: a scope per container),
# containerd's runc shim with SystemdCgroup (vm-containerd-systemd.sh) and podman
# --cgroup-manager systemd (vm-podman-systemd.sh) running bulkhead when they are installed, and
# last rootless bulkhead on the user's own systemd manager (vm-rootless-systemd.sh).
# Usage: tests/systemd/run-vm-systemd-cgroup.sh [BUILD_DIR] [--no-clients|--clients-only]
#        (BULKHEAD_VM_TIMEOUT, default 900 s)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# What runs: both (default); --no-clients (tier 1: the clients are tier 2's, installed by its
# clients stage); --clients-only (tier 2, after that install).
what=${2:-both}
case $what in
both | --no-clients | --clients-only) ;;
*) echo "usage: run-vm-systemd-cgroup.sh [BUILD_DIR] [--no-clients|--clients-only]" >&2; exit 2 ;;
esac
[[ -x $build/cli/bulkhead ]] || { echo "run-vm-systemd-cgroup: $build/cli/bulkhead not built" >&2; exit 125; }
start=$(date +%s)

# The VM mounts fresh /tmp and /run: stage the binaries and the scenarios under /var/tmp (a checkout
# under /tmp, as a CI clone may be, is hidden in the guest).
stage=$(mktemp -d /var/tmp/bulkhead-vm-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkhead" "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$repo/tests/storage/make-busybox-rootfs.sh" "$here"/vm-*.sh "$stage/"
# The clients (vm-containerd-systemd.sh, vm-podman-systemd.sh) when Debian's containerd and
# podman are installed (tests/clients/run-client-tests.sh installs them); each missing one is said.
clients=()
if [[ $what != --no-clients ]]; then
  command -v containerd >/dev/null && command -v ctr >/dev/null && clients+=(containerd)
  command -v podman >/dev/null && command -v conmon >/dev/null && command -v dbus-daemon >/dev/null && clients+=(podman)
  [[ ${#clients[@]} == 2 ]] || echo "run-vm-systemd-cgroup: only the clients found are run: ${clients[*]:-none}"
fi
if [[ $what == --clients-only && ${#clients[@]} == 0 ]]; then
  echo "run-vm-systemd-cgroup: --clients-only, but neither containerd nor podman is installed (tests/clients/run-client-tests.sh installs them)" >&2
  exit 1
fi
((${#clients[@]} == 0)) || /usr/bin/python3 "$repo/tests/clients/make-image.py" "$stage/image.tar" >/dev/null
cat >"$stage/all.sh" <<'SH'
here=$1 bh=$2 image=$3 what=$4
shift 4
if [[ $what != --clients-only ]]; then
  bash "$here/vm-systemd-cgroup.sh" "$bh" || exit 1
  bash "$here/vm-daemon-systemd.sh" "$(dirname "$bh")" "$(dirname "$bh")/make-busybox-rootfs.sh" || exit 1
fi
rc=0
for c in "$@"; do bash "$here/vm-$c-systemd.sh" "$bh" "$image" || rc=1; done
# Last: it starts the system D-Bus, which the podman scenario starts its own way.
[[ $what == --clients-only ]] || bash "$here/vm-rootless-systemd.sh" "$bh" || rc=1
exit $rc
SH

cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --systemd --timeout "${BULKHEAD_VM_TIMEOUT:-900}" -- \
    bash "$stage/all.sh" "$stage" "$stage/bulkhead" "$stage/image.tar" "$what" "${clients[@]}" || rc=$?
  # 124/125 are the test bed's (a VM that did not boot or stopped making progress): boot once more.
  [[ ($rc == 125 || $rc == 124) && $attempt == 1 ]] || break
  echo "run-vm-systemd-cgroup: the VM failed ($rc); retrying once" >&2
done
echo "run-vm-systemd-cgroup: exit $rc after $(($(date +%s) - start)) s" >&2
exit "$rc"
