#!/usr/bin/env bash
# The systemd cgroup driver against a real systemd (issue 15 item 3). Runs inside
# `tests/vm/run-in-vm.sh --systemd` (systemd is PID 1, cgroup v2), started by
# run-vm-systemd-cgroup.sh with the staged bulkhead binary:
#   bad input (a slice with "/", a path that is no slice:prefix:name) fails naming the value and
#   leaves no state, unit or cgroup; create (--systemd-cgroup=true) gives a transient scope with
#   Delegate=yes whose MemoryMax/TasksMax/CPUWeight match the cgroup files; start, update (unit
#   property and file), pause/resume (freezer), kill + delete (no unit, no cgroup left); run with
#   the default path system.slice:bulkhead:ID; delete --force of a running container; checkpoint
#   (CRIU) of a scoped container and restore --systemd-cgroup into a new scope: the counter in
#   memory goes on, limits are unit properties again, no placeholder left; a restore that CRIU
#   fails leaves no unit, cgroup or state.
# Usage: vm-systemd-cgroup.sh BULKHEAD_BINARY
set -euo pipefail
bh_bin=$1
work=$(mktemp -d /tmp/bh-sdcg.XXXXXX)
root=$work/state
bh() { "$bh_bin" --root "$root" "$@"; }
t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
step() { echo "== $* ($(ms) ms)"; }
fail() {
  echo "FAIL: $*" >&2
  systemctl list-units --all --no-pager 'bh-*' 'bulkhead-*' >&2 || true
  exit 1
}
expect_eq() { # WHAT GOT WANT
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
  echo "ok: $1 = $2"
}
prop() { systemctl show -P "$2" "$1"; }

step "guest: PID 1 is $(cat /proc/1/comm), $(systemctl --version | head -1)"
[[ $(cat /proc/1/comm) == systemd && -d /run/systemd/system ]] || fail "systemd is not PID 1"
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] || fail "/sys/fs/cgroup is not cgroup2"

# Only the applets used below: make-busybox-rootfs.sh's few hundred links take over a minute in
# the TCG guest (one exec each over 9p).
mkdir -p "$work/bundle/rootfs/"{bin,proc,sys,dev,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in sh sleep cat true mv usleep; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
(cd "$work/bundle" && "$bh_bin" spec)
spec() { # JQ-FILTER: a config.json from the generated one
  jq "$1" "$work/bundle/config.json.orig" >"$work/bundle/config.json"
}
mv "$work/bundle/config.json" "$work/bundle/config.json.orig"
limits='.process.terminal = false | .linux.resources = {memory: {limit: 67108864}, pids: {limit: 50},
        cpu: {shares: 512, quota: 50000, period: 100000}}'

step "bad input: a slice with a slash, a path that is not slice:prefix:name"
for path in "a/b.slice:bh:bad" "/bulkhead/bad" "system.slice:bh:x.slice"; do
  spec "$limits | .process.args = [\"true\"] | .linux.cgroupsPath = \"$path\""
  if out=$(bh --systemd-cgroup create -b "$work/bundle" bad 2>&1); then fail "create with cgroupsPath $path succeeded"; fi
  echo "refused: $out"
  [[ $out == *"linux.cgroupsPath \"$path\""* ]] || fail "the error does not name the value $path: $out"
  [[ -z $(bh list -q) ]] || fail "state left behind after the refused $path"
done
[[ -z $(systemctl list-units --all --no-legend 'bh-*') ]] || fail "a unit was left behind by bad input"

step "create c1 with --systemd-cgroup=true in a nested slice"
spec "$limits | .process.args = [\"sleep\", \"100000\"] | .linux.cgroupsPath = \"bulkhead-test.slice:bh:c1\""
t=$(date +%s%N)
bh --systemd-cgroup=true create -b "$work/bundle" c1
echo "create took $((($(date +%s%N) - t) / 1000000)) ms"
unit=bh-c1.scope cg=/sys/fs/cgroup/bulkhead.slice/bulkhead-test.slice/bh-c1.scope
systemctl show --no-pager -p Id -p ActiveState -p Slice -p ControlGroup -p Delegate -p MemoryMax -p TasksMax \
  -p CPUWeight -p CPUQuotaPerSecUSec "$unit"
expect_eq "ActiveState" "$(prop $unit ActiveState)" active
expect_eq "Delegate" "$(prop $unit Delegate)" yes
expect_eq "Slice" "$(prop $unit Slice)" bulkhead-test.slice
expect_eq "ControlGroup" "$(prop $unit ControlGroup)" /bulkhead.slice/bulkhead-test.slice/bh-c1.scope
expect_eq "MemoryMax" "$(prop $unit MemoryMax)" 67108864
expect_eq "memory.max" "$(cat $cg/memory.max)" 67108864
expect_eq "TasksMax" "$(prop $unit TasksMax)" 50
expect_eq "pids.max" "$(cat $cg/pids.max)" 50
expect_eq "cpu.weight" "$(cat $cg/cpu.weight)" "$(prop $unit CPUWeight)"
expect_eq "cpu.max" "$(cat $cg/cpu.max)" "50000 100000"
pid=$(bh state c1 | jq .pid)
expect_eq "init in the scope" "$(grep -c "^$pid\$" $cg/cgroup.procs)" 1
expect_eq "recorded driver" "$(jq -r '.cgroup_driver + " " + .systemd_unit' "$root/c1/state.json")" "systemd $unit"

step "start c1"
bh start c1
expect_eq "status" "$(bh state c1 | jq -r .status)" running

step "update c1 --memory 128M --pids-limit 80"
bh update --memory 134217728 --pids-limit 80 c1
expect_eq "MemoryMax after update" "$(prop $unit MemoryMax)" 134217728
expect_eq "memory.max after update" "$(cat $cg/memory.max)" 134217728
expect_eq "TasksMax after update" "$(prop $unit TasksMax)" 80
expect_eq "pids.max after update" "$(cat $cg/pids.max)" 80

step "pause and resume c1"
bh pause c1
expect_eq "status" "$(bh state c1 | jq -r .status)" paused
grep -qx "frozen 1" $cg/cgroup.events || fail "cgroup.events does not say frozen 1"
bh resume c1
expect_eq "status" "$(bh state c1 | jq -r .status)" running

step "kill and delete c1"
bh kill c1 KILL
for _ in $(seq 100); do [[ $(bh state c1 | jq -r .status) == stopped ]] && break; sleep 0.1; done
t=$(date +%s%N)
bh delete c1
echo "delete took $((($(date +%s%N) - t) / 1000000)) ms"
expect_eq "LoadState after delete" "$(prop $unit LoadState)" not-found
[[ ! -e $cg ]] || fail "cgroup $cg left behind"
[[ -z $(bh list -q) ]] || fail "state left behind"
echo "ok: no unit, no cgroup, no state left"

step "run c2 (foreground) with the default cgroupsPath system.slice:bulkhead:c2"
spec "$limits | .process.args = [\"sh\", \"-c\", \"cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max; exit 3\"]"
rc=0
out=$(bh --systemd-cgroup run -b "$work/bundle" c2) || rc=$?
echo "$out"
expect_eq "run exit status" "$rc" 3
expect_eq "memory.max seen inside" "$(tail -1 <<<"$out")" 67108864
expect_eq "LoadState after run" "$(prop bulkhead-c2.scope LoadState)" not-found
[[ ! -e /sys/fs/cgroup/system.slice/bulkhead-c2.scope ]] || fail "the scope's cgroup is left after run"

step "delete --force of a running container (c3, default path)"
spec "$limits | .process.args = [\"sleep\", \"100000\"]"
bh --systemd-cgroup run -d -b "$work/bundle" c3
expect_eq "c3 scope" "$(prop bulkhead-c3.scope ActiveState) $(prop bulkhead-c3.scope Slice)" "active system.slice"
bh delete --force c3
expect_eq "LoadState after delete --force" "$(prop bulkhead-c3.scope LoadState)" not-found
[[ ! -e /sys/fs/cgroup/system.slice/bulkhead-c3.scope ]] || fail "c3's cgroup left behind"

step "a scope that already exists is a clear error and leaves the other alone"
systemd-run --unit bh-dup --scope -q sleep 100000 &
for _ in $(seq 100); do [[ $(prop bh-dup.scope ActiveState) == active ]] && break; sleep 0.1; done
spec "$limits | .process.args = [\"true\"] | .linux.cgroupsPath = \":bh:dup\""
if out=$(bh --systemd-cgroup create -b "$work/bundle" dup 2>&1); then fail "create into an existing unit succeeded"; fi
echo "refused: $out"
[[ $out == *bh-dup.scope* ]] || fail "the error does not name the unit: $out"
expect_eq "the other scope" "$(prop bh-dup.scope ActiveState)" active
[[ -z $(bh list -q) ]] || fail "state left behind after the refused duplicate"
systemctl stop bh-dup.scope

step "checkpoint c4 (a counter in memory) from its scope, restore it into a new scope"
if command -v criu >/dev/null; then
  # The count lives only in the shell; SIGUSR1 writes it to /tmp/c (the bundle's rootfs/tmp).
  script='exec </dev/null >/dev/null 2>&1; i=0
trap '\''echo $i >/tmp/c.new; mv /tmp/c.new /tmp/c'\'' USR1
while :; do i=$((i+1)); usleep 50000; done'
  jq --arg s "$script" '.root.readonly = false | .process.terminal = false | .process.args = ["sh", "-c", $s]
    | .linux.resources = {memory: {limit: 67108864}, pids: {limit: 50}}
    | .linux.cgroupsPath = "bulkhead-test.slice:bh:c4"' "$work/bundle/config.json.orig" >"$work/bundle/config.json"
  unit4=bh-c4.scope cg4=/sys/fs/cgroup/bulkhead.slice/bulkhead-test.slice/bh-c4.scope
  ask() {
    rm -f "$work/bundle/rootfs/tmp/c"
    bh kill c4 USR1
    for _ in $(seq 1 300); do [[ -s $work/bundle/rootfs/tmp/c ]] && { cat "$work/bundle/rootfs/tmp/c"; return; }; sleep 0.1; done
    fail "the counter of c4 did not answer SIGUSR1"
  }
  bh --systemd-cgroup run -d -b "$work/bundle" c4 </dev/null >/dev/null 2>&1
  for _ in $(seq 1 100); do (($(ask) >= 10)) && break; sleep 0.2; done
  before=$(ask)
  bh checkpoint --image-path "$work/img4" --work-path "$work/w4" c4 || {
    tail -20 "$work/w4/dump.log" >&2
    fail "checkpoint of c4"
  }
  expect_eq "LoadState after checkpoint" "$(prop $unit4 LoadState)" not-found
  [[ ! -e $cg4 ]] || fail "c4's cgroup left after the checkpoint"

  # CRIU fails after the scope exists (no pstree.img): nothing may be left.
  cp -a "$work/img4" "$work/img4-bad"
  rm "$work/img4-bad/pstree.img"
  if out=$(bh --systemd-cgroup restore -d --image-path "$work/img4-bad" --work-path "$work/w4-bad" \
    --bundle "$work/bundle" c4 2>&1); then fail "restore from images without pstree.img succeeded"; fi
  echo "refused: ${out:0:300}"
  expect_eq "LoadState after the failed restore" "$(prop $unit4 LoadState)" not-found
  [[ ! -e $cg4 ]] || fail "c4's cgroup left after the failed restore"
  [[ -z $(bh list -q) ]] || fail "state left after the failed restore"

  t=$(date +%s%N)
  bh --systemd-cgroup restore -d --image-path "$work/img4" --work-path "$work/w4r" --bundle "$work/bundle" c4 || {
    tail -20 "$work/w4r/restore.log" >&2
    fail "restore --systemd-cgroup of c4"
  }
  echo "restore took $((($(date +%s%N) - t) / 1000000)) ms"
  expect_eq "status after restore" "$(bh state c4 | jq -r .status)" running
  expect_eq "ActiveState after restore" "$(prop $unit4 ActiveState)" active
  expect_eq "Delegate after restore" "$(prop $unit4 Delegate)" yes
  expect_eq "MemoryMax after restore" "$(prop $unit4 MemoryMax)" 67108864
  expect_eq "memory.max after restore" "$(cat $cg4/memory.max)" 67108864
  pid4=$(bh state c4 | jq .pid)
  expect_eq "restored init in the scope" "$(grep -c "^$pid4\$" $cg4/cgroup.procs)" 1
  expect_eq "the scope's only cgroup" "$(find $cg4 -mindepth 1 -type d | wc -l)" 0
  expect_eq "recorded driver after restore" "$(jq -r '.cgroup_driver + " " + .systemd_unit' "$root/c4/state.json")" \
    "systemd $unit4"
  after=$(ask)
  ((after >= before)) || fail "the counter went back: $before before the checkpoint, $after after the restore"
  echo "ok: counter $before before the checkpoint, $after after the restore"
  bh delete --force c4
  expect_eq "LoadState after delete" "$(prop $unit4 LoadState)" not-found
  [[ ! -e $cg4 ]] || fail "c4's cgroup left after delete"
else
  echo "SKIP: criu is not installed"
fi

step "done"
echo "PASS: systemd cgroup driver"
