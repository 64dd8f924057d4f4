#!/usr/bin/env bash
# bulkheadd checkpoint/restore under CRIU (run inside tests/vm/run-in-vm.sh by run-vm-criu.sh).
# bulkheadd runs in a netns of its own with a bridge network; c1 (busybox, on the bridge) runs a
# counter that lives only in shell memory (written to /tmp/c on SIGUSR1 with the next line read
# from an fd it holds open, so the fd's offset shows), httpd on :8080 and an echo server on :9000
# to which a client in the daemon's netns keeps one TCP connection open:
#   checkpoint (runs on) -> checkpoint --stop (gone) -> restore (counter, offset, listening and
#   established sockets, files of that instant) -> restore of the older checkpoint (its instant)
#   -> a checkpoint without a TCP connection (CRIU in c1's network namespace, no lock) and its
#   restore -> a failing CRIU (the container runs on, thawed, no snapshot left) -> stop --stateful,
#   bulkheadd SIGKILLed and restarted, start resumes -> stop + start boots afresh -> destroy
#   leaves no snapshot, mount or cgroup.
# MODE unprivileged: c1 in its own user namespace and id range (docs/unprivileged.md), the daemon's
# root on an ext4 image (the VM's 6.1 kernel cannot idmap its tmpfs); each restore also checks
# that init runs as the range's root, owns its cgroup, and that the images went back to root.
# Usage: vm-daemon-checkpoint.sh BIN_DIR MAKE_ROOTFS_SCRIPT [privileged|unprivileged]
set -euo pipefail
bin=$1 mkrootfs=$2 mode=${3:-privileged}
work=$(mktemp -d /tmp/bhd-ckpt.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
# Privileged: the daemon root on the VM's tmpfs, which Linux 6.1 cannot idmap (6.3 can).
daemon_flags=(--privileged-default)
range=200000
if [[ $mode == unprivileged ]]; then
  # shellcheck source=../vm/ext4-root.sh
  source "$(dirname "${BASH_SOURCE[0]}")/ext4-root.sh"
  ext4_root "$work" 1G
  root=$work/ext4/root
  daemon_flags=(--id-range "$range:65536" --unprivileged-default)
fi
hostns=bhckpt-host
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
in_host() { nsenter --net=/run/netns/$hostns "$@"; }
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "FAIL: $*" >&2
  echo "--- daemon log" >&2
  tail -40 "$work/bulkheadd.log" >&2 || true
  for f in $(find "$root" -name 'dump.log' -o -name 'restore.log' 2>/dev/null); do
    echo "--- $f (errors)" >&2
    grep -n Error "$f" | tail -5 >&2 || true
  done
  for f in $(find "$root" -name 'monitor.log' 2>/dev/null); do
    echo "--- $f" >&2
    tail -20 "$f" >&2
  done
  for f in $(find "$root" -name 'restore.log' 2>/dev/null); do
    echo "--- $f (the end)" >&2
    tail -25 "$f" >&2
  done
  exit 1
}
cleanup() {
  [[ -n ${client:-} ]] && kill "$client" 2>/dev/null || true
  mountpoint -q "$(command -v criu)" && umount "$(command -v criu)" || true
  [[ -n ${daemon:-} ]] && { ctl destroy c1 --force >/dev/null 2>&1 || true; kill -9 "$daemon" 2>/dev/null || true; }
  ip netns del $hostns 2>/dev/null || true
  mountpoint -q "$work/ext4" 2>/dev/null && umount "$work/ext4"
  rm -rf "$work"
}
trap cleanup EXIT

start_daemon() {
  nsenter --net=/run/netns/$hostns "$bin/bulkheadd" --root "$root" --socket "$sock" --cgroup-parent /bulkhead-ckpt \
    "${daemon_flags[@]}" >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}
state() { ctl info c1 --json | jq -r .state; }
# "<count> <line>" from the counter (SIGUSR1 to init).
ask() {
  ctl exec c1 -- rm -f /tmp/c
  ctl kill c1 USR1 >/dev/null
  local out
  for _ in $(seq 1 300); do
    out=$(ctl exec c1 -- cat /tmp/c 2>/dev/null || true)
    [[ -n $out ]] && { echo "$out"; return; }
    sleep 0.2
  done
  fail "the counter did not answer SIGUSR1"
}
wait_count() {
  local n
  for _ in $(seq 1 300); do
    read -r n _ < <(ask)
    ((n >= $1)) && return
    sleep 0.3
  done
  fail "counter stuck below $1"
}
fetch() { in_host wget -q -T 10 -O- http://198.18.78.10:8080/hello.txt; }
# Unprivileged: init is the range's root on the host and owns its cgroup; no image stayed lent to it.
check_ids() {
  [[ $mode == unprivileged ]] || return 0
  local pid
  pid=$(ctl info c1 --json | jq -r .pid)
  [[ $(stat -c %u "/proc/$pid") == "$range" ]] || fail "$1: init $pid runs as $(stat -c %u "/proc/$pid"), not $range"
  read -r inside outside _ <"/proc/$pid/uid_map"
  [[ $inside == 0 && $outside == "$range" ]] || fail "$1: uid_map $(cat "/proc/$pid/uid_map")"
  [[ $(stat -c %u /sys/fs/cgroup/bulkhead-ckpt/c1) == "$range" ]] || fail "$1: cgroup not delegated"
  local lent
  lent=$(find "$root/snapshots" "$root/containers/c1" -user "$range" -name '*.img' 2>/dev/null | head -3 || true)
  [[ -z $lent ]] || fail "$1: images still owned by $range: $lent"
  [[ $(ctl exec c1 -- id -u) == 0 ]] || fail "$1: id -u inside is not 0"
}

ip netns add $hostns
in_host ip link set lo up
sh "$mkrootfs" "$work/rootfs" >/dev/null
mkdir -p "$work/rootfs/srv"
echo hello-from-c1 >"$work/rootfs/srv/hello.txt"
seq -f 'line%g' 1 1000 >"$work/rootfs/lines" # one line per answer; how many depends on the VM's speed
start_daemon
ctl template import busybox "$work/rootfs" >/dev/null
ctl network create lan0 --bridge --ipv4 198.18.78.1/24 >/dev/null || fail "network create"
script='exec 3</lines; httpd -p 8080 -h /srv; (while :; do nc -l -p 9000 -e cat; done) & i=0
trap '\''read -r l <&3; echo "$i $l" >/tmp/c.new; mv /tmp/c.new /tmp/c'\'' USR1
while :; do i=$((i+1)); usleep 50000; done'
ctl create c1 --template busybox --net lan0:ipv4=198.18.78.10 --start --init /bin/sh -c "$script" >/dev/null ||
  fail "create c1"
wait_count 20
[[ $(fetch) == hello-from-c1 ]] || fail "httpd before any checkpoint"
check_ids "after create"
step "c1 runs ($mode): counter $(ask), httpd answers"

# One TCP connection from the daemon's netns, kept across the stop+restore below.
cat >"$work/client.py" <<'PY'
import os, socket, sys, time
s = socket.create_connection(("198.18.78.10", 9000), timeout=60)
def roundtrip(msg):
    s.sendall(msg.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            sys.exit("connection closed")
        data += d
    return data.decode().strip()
print("first:", roundtrip("one"), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.2)
print("second:", roundtrip("two"), flush=True)
PY
in_host python3 "$work/client.py" "$work/go" >"$work/client.out" 2>&1 &
client=$!
for _ in $(seq 1 150); do grep -q "first: one" "$work/client.out" && break; sleep 0.2; done
grep -q "first: one" "$work/client.out" || fail "TCP client: $(cat "$work/client.out")"
step "TCP client connected to c1:9000, first round trip ok"

# Files on c1's tmpfs mounts, which bulkheadd's checkpoints copy themselves (not CRIU's tar):
# content, a 4 MiB /dev/shm file (charged to c1's memory cgroup again after a restore), a link,
# a private directory of another user, a device node; and each mount's options, compared after.
ctl exec c1 -- sh -c 'echo run-state >/run/app.state; ln -s app.state /run/app.link
  mkdir -m 700 /run/private; echo secret >/run/private/f; chown -R 1000:1000 /run/private
  dd if=/dev/zero of=/dev/shm/seg bs=1M count=4 2>/dev/null; echo shm-tail >>/dev/shm/seg' ||
  fail "files on c1's tmpfs mounts"
tmpfs_opts() {
  ctl exec c1 -- awk '$5=="/run"||$5=="/dev"||$5=="/dev/shm"{i=7; while($i!="-")i++; print $5, $6, $(i+1), $(i+3)}' \
    /proc/self/mountinfo
}
tmpfs_before=$(tmpfs_opts)
tmpfs_check() {
  [[ $(ctl exec c1 -- cat /run/app.link) == run-state ]] || fail "$1: /run/app.link"
  [[ $(ctl exec c1 -- cat /run/private/f) == secret ]] || fail "$1: /run/private/f"
  [[ $(ctl exec c1 -- stat -c '%a %u' /run/private) == "700 1000" ]] ||
    fail "$1: /run/private is $(ctl exec c1 -- stat -c '%a %u' /run/private)"
  [[ $(ctl exec c1 -- tail -c 9 /dev/shm/seg) == shm-tail ]] || fail "$1: /dev/shm/seg"
  ctl exec c1 -- test -c /dev/null || fail "$1: /dev/null is no device"
  [[ $(tmpfs_opts) == "$tmpfs_before" ]] || fail "$1: tmpfs mounts were
$tmpfs_before
and are
$(tmpfs_opts)"
  local shmem
  shmem=$(awk '$1=="shmem"{print $2}' /sys/fs/cgroup/bulkhead-ckpt/c1/memory.stat)
  ((shmem >= 4 << 20)) || fail "$1: c1's cgroup is charged $shmem bytes of shmem, not /dev/shm/seg's 4 MiB"
  ! grep -q criu-bulkhead-tmpfs /proc/self/mountinfo || fail "$1: a tmpfs source is still mounted on the host"
}

# The instant of snap1 lies between these two answers (each answer reads one line of the fd).
read -r n0 l0 < <(ask)
ctl checkpoint c1 snap1 || fail "checkpoint snap1"
[[ $(state) == running ]] || fail "after checkpoint snap1: $(state)"
read -r n1 l1 < <(ask)
wait_count $((n1 + 5))
[[ $(ctl snapshot list c1 --json | jq -r '.[] | select(.name=="snap1") | .memory') == true ]] ||
  fail "snap1 in the list: $(ctl snapshot list c1 --json)"
# The TCP connection is open: CRIU saved it and locked the network (runtime/checkpoint_netns.hpp).
[[ -n $(find "$root/snapshots/c1" -path '*snap1*' -name inventory.img) ]] || fail "no images of snap1 found"
[[ -z $(find "$root/snapshots/c1" -path '*snap1*' -name bulkhead-criu-in-tree-netns) ]] ||
  fail "snap1 was dumped with CRIU in c1's network namespace although a TCP connection was open"
step "checkpoint snap1: c1 runs on (counter $n1 $l1), its TCP connection saved"

ctl exec c1 -- sh -c 'echo after-snap1 >/root/marker'
read -r n2 l2 < <(ask)
json=$(ctl checkpoint c1 snap2 --stop --json) || fail "checkpoint --stop snap2"
step "checkpoint --stop snap2 after counter $n2 $l2: $json"
[[ $(state) == stopped ]] || fail "after checkpoint --stop: $(state)"
[[ -z $(pgrep -f 'usleep 50000' || true) ]] || fail "c1's processes left after --stop"
[[ $(jq -r .memory <<<"$json") == true ]] || fail "metadata: $json"
(($(jq -r '.pause_ms // 0' <<<"$json") > 0)) || fail "no pause_ms (the freeze to the dump's end) in $json"

# What every process does if the restore takes long (kept for fail()).
(sleep 60; {
  ps -eo pid,ppid,stat,wchan:32,args
  for p in $(pgrep -f bulkhead-monitor; pgrep criu); do
    echo "--- $p: $(tr '\0' ' ' </proc/$p/cmdline)"
    cat /proc/$p/stack
    ls -l /proc/$p/fd
  done
} >"$work/slow-restore.txt" 2>&1) &
watchdog=$!
ctl restore c1 || { cat "$work/slow-restore.txt" >&2; fail "restore (newest)"; }
kill $watchdog 2>/dev/null || true
[[ $(state) == running ]] || fail "after restore: $(state)"
read -r n3 l3 < <(ask)
((n3 >= n2)) || fail "counter went back: $n2 before the dump, $n3 after the restore"
[[ ${l3#line} == $((${l2#line} + 1)) ]] || fail "fd offset: $l2 before, $l3 after"
[[ $(fetch) == hello-from-c1 ]] || fail "httpd after restore"
[[ $(ctl exec c1 -- cat /root/marker) == after-snap1 ]] || fail "files of snap2"
touch "$work/go"
wait "$client" || fail "TCP client after restore: $(cat "$work/client.out")"
client=""
grep -q "second: two" "$work/client.out" || fail "TCP client: $(cat "$work/client.out")"
check_ids "after restore"
tmpfs_check "restore"
manifest=$(find "$root/snapshots/c1" -name bulkhead-tmpfs.json | head -1)
[[ -n $manifest ]] || fail "no bulkhead-tmpfs.json in c1's snapshots"
[[ $(jq -r '[.mounts[].destination] | sort | join(" ")' "$manifest") == "/dev /dev/shm /run" ]] ||
  fail "tmpfs manifest: $(cat "$manifest")"
step "restore: counter $n3 $l3 (was $n2 $l2), httpd answers, the TCP connection carried on, files as at snap2, tmpfs files and mounts as before"
# The masks come back as masks (docs/checkpoint.md: bound from the restore's own read-only tmpfs);
# /tmp is the rootfs's directory, not a tmpfs CRIU copies inside the freeze.
for d in /proc/acpi /sys/firmware; do
  ctl exec c1 -- test -d "$d" || continue
  [[ -z $(ctl exec c1 -- ls -A "$d") ]] || fail "$d is not empty after the restore"
  ! ctl exec c1 -- mkdir "$d/x" 2>/dev/null || fail "$d is writable after the restore"
done
! ctl exec c1 -- grep -q ' /tmp ' /proc/self/mountinfo || fail "/tmp is a mount in c1"
! grep -q criu-masked-dir /proc/self/mountinfo || fail "the masks' source is still mounted on the host"

# No TCP connection now (the client is done): a checkpoint that leaves c1 running starts CRIU in
# c1's network namespace, so CRIU neither saves nor locks it (runtime/checkpoint_netns.hpp); the
# restore starts CRIU in the new namespace the daemon made, where the listeners come back.
for _ in $(seq 1 50); do
  [[ -z $(nsenter --net="/proc/$(ctl info c1 --json | jq -r .pid)/ns/net" ss -Htn state established state syn-sent \
    state fin-wait-1 state fin-wait-2 state close-wait state last-ack state closing) ]] && break
  sleep 0.2
done
read -r n9 l9 < <(ask)
ctl checkpoint c1 idle || fail "checkpoint idle"
marked=$(find "$root/snapshots/c1" -path '*idle*' -name bulkhead-criu-in-tree-netns)
if [[ $mode == privileged ]]; then
  [[ -n $marked ]] || fail "idle: CRIU did not run in c1's network namespace: $(find "$root/snapshots/c1" -path '*idle*' -name dump.log -exec grep -h 'Lock network' {} +)"
  ! find "$root/snapshots/c1" -path '*idle*' -name dump.log -exec grep -q 'Running network-lock scripts' {} + ||
    fail "idle: CRIU locked the network"
else
  [[ -z $marked ]] || fail "idle: CRIU ran in the network namespace of a container in a user namespace"
fi
ctl restore c1 idle || fail "restore idle"
[[ $(state) == running ]] || fail "after restore idle: $(state)"
read -r n10 l10 < <(ask)
((n10 >= n9)) || fail "restore idle: counter $n10, was $n9 before the checkpoint"
[[ ${l10#line} == $((${l9#line} + 1)) ]] || fail "restore idle: fd offset $l10 (the checkpoint was taken after $l9)"
[[ $(fetch) == hello-from-c1 ]] || fail "httpd after restore idle"
pid=$(ctl info c1 --json | jq -r .pid)
[[ $(nsenter --net="/proc/$pid/ns/net" ip -4 -o addr show) == *198.18.78.10/* ]] ||
  fail "restore idle: c1's init is not in the namespace with its address: $(nsenter --net="/proc/$pid/ns/net" ip -o addr show)"
check_ids "after restore idle"
step "checkpoint idle without a TCP connection ($([[ -n $marked ]] && echo "CRIU in c1's namespace, no lock" || echo "locked as always")); restore: counter $n10, httpd answers"

ctl restore c1 snap1 || fail "restore snap1"
read -r n4 l4 < <(ask)
((n4 >= n0 && n4 < n3)) || fail "restore snap1: counter $n4 (snap1 between $n0 and $n1, later run $n3)"
[[ ${l4#line} == $((${l0#line} + 1)) ]] || fail "restore snap1: fd offset $l4 (snap1 was taken after $l0)"
! ctl exec c1 -- test -e /root/marker || fail "restore snap1: /root/marker is from later"
step "restore snap1 of a running c1: counter $n4 $l4 (snap1 taken between $n0 $l0 and $n1 $l1), files of snap1"

# A CRIU that fails: the container must run on, thawed, and no snapshot may appear.
criu_bin=$(command -v criu)
printf '#!/bin/sh\necho "injected failure" >&2\nexit 1\n' >"$work/criu-fails"
chmod +x "$work/criu-fails"
mount --bind "$work/criu-fails" "$criu_bin"
if err=$(ctl checkpoint c1 snap3 2>&1); then fail "checkpoint with a failing CRIU succeeded"; fi
umount "$criu_bin"
[[ $(state) == running ]] || fail "after the failed checkpoint: $(state)"
[[ $(cat /sys/fs/cgroup/bulkhead-ckpt/c1/cgroup.freeze) == 0 ]] || fail "c1 left frozen"
read -r n5 _ < <(ask)
wait_count $((n5 + 5))
[[ -z $(ctl snapshot list c1 --json | jq -r '.[] | select(.name=="snap3") | .name') ]] || fail "snap3 exists"
[[ -z $(ls -A "$root/snapshots/c1" | grep staging || true) ]] || fail "staging left: $(ls -A "$root/snapshots/c1")"
step "failing CRIU: '$err'; c1 runs on, thawed, no snap3"

read -r n6 l6 < <(ask)
ctl stop c1 --stateful || fail "stop --stateful"
[[ $(state) == stopped ]] || fail "after stop --stateful: $(state)"
[[ -f $root/containers/c1/saved-state/inventory.img ]] || fail "no saved state: $(ls "$root/containers/c1")"
kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
start_daemon
ctl start c1 || fail "start after stop --stateful"
read -r n7 l7 < <(ask)
((n7 >= n6)) || fail "stateful start: counter $n7 after $n6"
[[ ${l7#line} == $((${l6#line} + 1)) ]] || fail "stateful start: fd offset $l7 after $l6"
[[ ! -e $root/containers/c1/saved-state ]] || fail "saved state kept after the resume"
check_ids "after the stateful start"
tmpfs_check "stateful start"
step "stop --stateful, bulkheadd SIGKILLed and restarted, start: counter $n7 $l7 (was $n6 $l6)"

ctl stop c1 >/dev/null || fail "stop"
ctl start c1 >/dev/null || fail "start"
read -r n8 l8 < <(ask)
[[ $l8 == line1 ]] || fail "a plain start did not boot afresh: $n8 $l8"
step "stop + start: a fresh boot ($n8 $l8)"

ctl destroy c1 --force >/dev/null || fail "destroy"
[[ ! -e $root/snapshots/c1 ]] || fail "snapshots left: $(ls -A "$root/snapshots/c1")"
[[ ! -e /sys/fs/cgroup/bulkhead-ckpt/c1 ]] || fail "cgroup left"
! grep -q "$root" /proc/self/mountinfo || fail "mounts left: $(grep "$root" /proc/self/mountinfo)"
step "destroy: no snapshot, cgroup or mount left"
ctl network rm lan0 >/dev/null
kill "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=""
echo "vm-daemon-checkpoint ($mode): OK ($(($(date +%s) - t0)) s)"
