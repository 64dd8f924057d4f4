#!/usr/bin/env bash
# bulkheadd on a host whose PID 1 is systemd (issue 15 item 3): runs inside
# `tests/vm/run-in-vm.sh --systemd`, started by run-vm-systemd-cgroup.sh with the staged binaries.
# With no --cgroup-driver/--cgroup-parent the daemon puts each container in a transient scope,
# bulkhead-NAME.scope in machine.slice (daemon/cgroup_placement.hpp):
#   host info names the driver; create --start: the scope is active with Delegate=yes, the limits
#   as unit properties and cgroup files, init in the scope; set --memory changes the property
#   live; bulkheadd SIGKILLed and restarted: the container runs on, same pid, same scope;
#   checkpoint --stop (the scope goes) and restore (a new scope, the counter in memory goes on,
#   no placeholder cgroup left); stop and start; destroy leaves no unit, cgroup, record or
#   monitor. A daemon told --cgroup-driver systemd with a cgroup path refuses to start.
# Usage: vm-daemon-systemd.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
bin=$1 mkrootfs=$2
work=$(mktemp -d /tmp/bhd-sd.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
lxcfs_dir=$(mktemp -d /tmp/bhd-sd-lxcfs.XXXXXX)
unit=bulkhead-c1.scope cg=/sys/fs/cgroup/machine.slice/bulkhead-c1.scope
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
prop() { systemctl show -P "$2" "$1"; }
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "FAIL: $*" >&2
  systemctl list-units --all --no-pager 'bulkhead-*' >&2 || true
  echo "--- daemon log" >&2
  tail -40 "$work/bulkheadd.log" >&2 || true
  for f in $(find "$root" -name 'monitor.log' -o -name 'restore.log' 2>/dev/null); do
    echo "--- $f" >&2
    tail -20 "$f" >&2
  done
  exit 1
}
expect_eq() { # WHAT GOT WANT
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
  echo "ok: $1 = $2"
}
start_daemon() {
  "$bin/bulkheadd" --root "$root" --socket "$sock" --lxcfs-dir "$lxcfs_dir" --privileged-default >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}
cleanup() { # its status would be the script's: an if, not a failing test
  if [[ -n ${daemon:-} ]]; then
    ctl destroy c1 --force >/dev/null 2>&1 || true
    kill -9 "$daemon" 2>/dev/null || true
  fi
}
trap cleanup EXIT
# "<count>" from the counter in c1's shell (SIGUSR1 to init writes it to /tmp/c).
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
in_scope() { # PID: 1 when PID is in c1's scope
  grep -c "^$1\$" "$cg/cgroup.procs" || true
}

step "guest: PID 1 is $(cat /proc/1/comm)"
[[ $(cat /proc/1/comm) == systemd ]] || fail "systemd is not PID 1"
if out=$("$bin/bulkheadd" --root "$work/bad" --socket "$work/bad.sock" --cgroup-driver systemd \
  --cgroup-parent /bulkhead 2>&1); then fail "bulkheadd started with the systemd driver and a cgroup path"; fi
echo "refused: $out"
[[ $out == *'"/bulkhead"'* ]] || fail "the refusal does not name the value: $out"

sh "$mkrootfs" "$work/rootfs" >/dev/null
start_daemon
ctl host info
expect_eq "host info cgroups" "$(ctl host info --json | jq -r '.cgroups.driver + " " + .cgroups.parent')" \
  "systemd machine.slice:bulkhead"
ctl template import busybox "$work/rootfs" >/dev/null
script='i=0; trap '\''echo $i >/tmp/c.new; mv /tmp/c.new /tmp/c'\'' USR1
while :; do i=$((i+1)); usleep 50000; done'
ctl create c1 --template busybox --memory 64M --pids 100 --start --init /bin/sh -c "$script" >/dev/null ||
  fail "create c1"
pid=$(ctl info c1 --json | jq .pid)
systemctl status --no-pager --lines 0 "$unit" || true
systemctl show --no-pager -p Id -p ActiveState -p Slice -p ControlGroup -p Delegate -p MemoryMax -p TasksMax "$unit"
expect_eq "ActiveState" "$(prop $unit ActiveState)" active
expect_eq "Slice" "$(prop $unit Slice)" machine.slice
expect_eq "Delegate" "$(prop $unit Delegate)" yes
expect_eq "MemoryMax" "$(prop $unit MemoryMax)" 67108864
expect_eq "memory.max" "$(cat $cg/memory.max)" 67108864
expect_eq "TasksMax" "$(prop $unit TasksMax)" 100
expect_eq "init in the scope" "$(in_scope "$pid")" 1
step "c1 runs in $unit (pid $pid)"

ctl set c1 --memory 128M
expect_eq "MemoryMax after set" "$(prop $unit MemoryMax)" 134217728
expect_eq "memory.max after set" "$(cat $cg/memory.max)" 134217728

kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
start_daemon
expect_eq "pid after the daemon's restart" "$(ctl info c1 --json | jq .pid)" "$pid"
expect_eq "ActiveState after the daemon's restart" "$(prop $unit ActiveState)" active
step "bulkheadd SIGKILLed and restarted: c1 runs on in its scope"

for _ in $(seq 1 100); do (($(ask) >= 10)) && break; sleep 0.2; done
before=$(ask)
ctl checkpoint c1 snap1 --stop >/dev/null || fail "checkpoint --stop"
expect_eq "state after checkpoint --stop" "$(ctl info c1 --json | jq -r .state)" stopped
expect_eq "LoadState after checkpoint --stop" "$(prop $unit LoadState)" not-found
ctl restore c1 snap1 || fail "restore"
pid=$(ctl info c1 --json | jq .pid)
expect_eq "ActiveState after restore" "$(prop $unit ActiveState)" active
expect_eq "Delegate after restore" "$(prop $unit Delegate)" yes
expect_eq "MemoryMax after restore" "$(prop $unit MemoryMax)" 134217728
expect_eq "restored init in the scope" "$(in_scope "$pid")" 1
expect_eq "cgroups below the scope" "$(find $cg -mindepth 1 -type d | wc -l)" 0
after=$(ask)
((after >= before)) || fail "the counter went back: $before before the checkpoint, $after after the restore"
step "checkpoint --stop at $before, restore into a new scope: counting on at $after"

ctl stop c1 --timeout 1 >/dev/null # sh ignores the stop signal: KILL after 1 s
expect_eq "LoadState after stop" "$(prop $unit LoadState)" not-found
[[ ! -e $cg ]] || fail "$cg left after stop"
ctl start c1 >/dev/null
expect_eq "ActiveState after start" "$(prop $unit ActiveState)" active
expect_eq "init in the scope after start" "$(in_scope "$(ctl info c1 --json | jq .pid)")" 1
step "stop and start: the scope goes and comes back"

ctl destroy c1 --force >/dev/null
expect_eq "LoadState after destroy" "$(prop $unit LoadState)" not-found
[[ ! -e $cg ]] || fail "$cg left after destroy"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=
[[ -z $(ls -A "$root/containers") ]] || fail "records left: $(ls "$root/containers")"
[[ -z $(ls -A "$root/oci") ]] || fail "runtime state left"
pgrep -f bulkhead-monitor >/dev/null && fail "monitors left: $(pgrep -af bulkhead-monitor)"
[[ -z $(systemctl list-units --all --no-legend 'bulkhead-*.scope') ]] || fail "scopes left"
step "destroy: no unit, cgroup, record or monitor left"
echo "PASS: bulkheadd with the systemd cgroup driver"
