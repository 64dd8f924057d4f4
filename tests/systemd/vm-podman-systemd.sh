#!/usr/bin/env bash
# podman (Debian's package, with conmon) with `--cgroup-manager systemd` running bulkhead: podman
# puts conmon in a scope of its own over D-Bus and has conmon call the runtime with
# --systemd-cgroup and cgroupsPath machine.slice:libpod:<id>. podman needs the system bus, so a
# dbus-daemon is started first and systemd (SIGUSR1) connects to it; bulkhead then reaches
# systemd through that bus rather than /run/systemd/private. Runs in the systemd VM after
# vm-systemd-cgroup.sh (run-vm-systemd-cgroup.sh starts it).
# Usage: vm-podman-systemd.sh BULKHEAD_BINARY IMAGE_TAR
set -euo pipefail
bh_bin=$1 image_tar=$2
IMAGE=localhost/bulkhead-busybox:latest
W=$(mktemp -d /tmp/bh-podman.XXXXXX)
t0=$(date +%s%N)
step() { echo "== podman: $* ($((($(date +%s%N) - t0) / 1000000)) ms)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"; echo "ok: $1 = $2"; }
prop() { systemctl show -P "$2" "$1"; }

step "system bus: dbus-daemon, systemd reconnects (SIGUSR1)"
mkdir -p /run/dbus
dbus-daemon --system --fork
kill -USR1 1
for _ in $(seq 100); do
  busctl --system status org.freedesktop.systemd1 >/dev/null 2>&1 && break
  sleep 0.2
done
busctl --system status org.freedesktop.systemd1 >/dev/null || fail "systemd is not on the system bus"

mkdir -p "$W/storage" "$W/run" "$W/libpod"
cat >"$W/containers.conf" <<CONF
[containers]
log_driver = "k8s-file"
netns = "none"
[engine]
events_logger = "file"
events_logfile_path = "$W/events.log"
CONF
export CONTAINERS_CONF=$W/containers.conf
podman_() {
  podman --root "$W/storage" --runroot "$W/run" --tmpdir "$W/libpod" --storage-driver vfs \
    --runtime "$bh_bin" --cgroup-manager systemd "$@"
}
podman_ load -q -i "$image_tar" >/dev/null || fail "podman load"

step "$(podman --version) run --rm --cgroup-manager systemd"
rc=0
out=$(podman_ run --rm "$IMAGE" sh -c 'echo hello; exit 5') || rc=$?
expect_eq "output" "$out" hello
expect_eq "exit status" "$rc" 5

step "run -d --memory 64m; the scope from systemctl; pause/unpause; rm -f"
podman_ run -d --name sdp --memory 64m "$IMAGE" sleep 100000 >/dev/null
id=$(podman_ inspect -f '{{.Id}}' sdp)
unit=libpod-$id.scope
systemctl show --no-pager -p Id -p ActiveState -p Slice -p Delegate -p MemoryMax "$unit"
expect_eq "Delegate" "$(prop "$unit" Delegate)" yes
expect_eq "MemoryMax" "$(prop "$unit" MemoryMax)" 67108864
expect_eq "memory.max" "$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max")" 67108864
expect_eq "bulkhead's record" "$(jq -r .cgroup_driver "/run/bulkhead/$id/state.json")" systemd
podman_ pause sdp >/dev/null
expect_eq "status after pause" "$(podman_ inspect -f '{{.State.Status}}' sdp)" paused
podman_ unpause sdp >/dev/null
podman_ rm -f -t 0 sdp >/dev/null
expect_eq "LoadState after rm -f" "$(prop "$unit" LoadState)" not-found
[[ ! -e /sys/fs/cgroup/machine.slice/$unit ]] || fail "$unit's cgroup left behind"
step "done"
echo "PASS: podman --cgroup-manager systemd"
