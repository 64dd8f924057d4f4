#!/usr/bin/env bash
# Migration of unprivileged containers (docs/unprivileged.md "Moving between hosts") between
# simulated hosts (run inside tests/vm/run-in-vm.sh by run-vm-migrate-unprivileged.sh). Both
# daemons make unprivileged containers by default from the same pool (--id-range 100000:196608,
# three ranges) with their roots on an ext4 image (the VM's 6.1 kernel cannot idmap tmpfs).
# host2 already has h2 in range 100000. On host1, ct1 gets 100000 and ct2 165536:
#   - ct2 moves live: its range is free on host2, so it keeps it (CRIU's images carry it); its
#     shell's counter, kept only in memory, goes on; init runs as 165536 on host2;
#   - ct1 live is refused before any freeze (its range is h2's on host2): ct1 runs on with the
#     same init, host2 has nothing of it;
#   - ct1 cold: host2 gives it its free range 231072 and shifts its files into it (a file that
#     is 5:5 inside is 231077 on host2's disk and still 5:5 inside).
# Usage: vm-migrate-unprivileged.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
disk=/tmp/bh-mh-unpriv
# shellcheck source=../vm/ext4-root.sh
source "$here/ext4-root.sh"
ext4_root "$disk" 2G
MH_BASE=$disk/ext4/mh
MH_DAEMON_FLAGS="--id-range 100000:196608 --unprivileged-default"
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
info() { mh_ctl "$1" info "$2" --json; }
init_pid() { info "$1" "$2" | jq -r .pid; }
state() { info "$1" "$2" | jq -r .state; }
range_of() { info "$1" "$2" | jq -r '.idmap.uid // "privileged"'; }
count() { mh_ctl "$1" exec "$2" -- cat /count 2>/dev/null | awk '{print $2}' | grep . || echo 0; }
draw() { mh_ctl "$1" exec "$2" -- cat /count 2>/dev/null | awk '{print $1}'; }

mh_hosts_up host1:1 host2:2 || mh_fail "the hosts did not come up"
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
mh_rootfs || mh_fail "the busybox rootfs"
for h in host1 host2; do
  mh_host_template "$h" || mh_fail "template on $h"
  mh_host_net "$h" || mh_fail "network on $h"
done
mh_ct_create host2 h2 1 || mh_fail "h2 on host2"
# shellcheck disable=SC2016 # the container's shell expands them
counter='r=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$r $i" >/count; usleep 200000; done'
mh_ct_create host1 ct1 1 --init /bin/sh -c "$counter" || mh_fail "ct1 on host1"
mh_ct_create host1 ct2 2 --init /bin/sh -c "$counter" || mh_fail "ct2 on host1"
for ct in ct1 ct2; do
  mh_ctl host1 exec "$ct" -- sh -c "echo $ct > /state.txt && chown 5:5 /state.txt" || mh_fail "$ct's file"
done
[[ $(range_of host2 h2) == 100000 && $(range_of host1 ct1) == 100000 && $(range_of host1 ct2) == 165536 ]] ||
  mh_fail "ranges: h2 $(range_of host2 h2), ct1 $(range_of host1 ct1), ct2 $(range_of host1 ct2)"
mh_step "host1: ct1 (ids 100000..) and ct2 (165536..), unprivileged by default; host2: h2 (100000..)"

# --- live, the range is free on the target: kept
for _ in $(seq 1 300); do
  (($(count host1 ct2) >= 20)) && break
  sleep 0.5
done
before=$(count host1 ct2) r1=$(draw host1 ct2)
((before >= 20)) || mh_fail "ct2's counter is at $before on host1"
json=$(mh_ctl host1 migrate ct2 host2 --live --json) || mh_fail "live migration of ct2: $json"
echo "$json"
[[ $(state host2 ct2) == running && $(range_of host2 ct2) == 165536 ]] ||
  mh_fail "ct2 on host2: $(info host2 ct2 | jq -c '{state, idmap}')"
# The daemon's pids are of its host's pid namespace: read /proc there.
pid=$(init_pid host2 ct2)
[[ $(mh_on host2 stat -c %u "/proc/$pid") == 165536 ]] || mh_fail "ct2's init on host2 runs as $(mh_on host2 stat -c %u "/proc/$pid")"
read -r inside outside _ < <(mh_on host2 cat "/proc/$pid/uid_map")
[[ $inside == 0 && $outside == 165536 ]] || mh_fail "ct2's uid_map on host2: $(mh_on host2 cat "/proc/$pid/uid_map")"
sleep 1
after=$(count host2 ct2)
[[ $(draw host2 ct2) == "$r1" ]] || mh_fail "ct2's shell on host2 is another one ($(draw host2 ct2), was $r1)"
((after > before)) || mh_fail "ct2's counter on host2 is $after, it was $before on host1"
[[ $(mh_ctl host2 exec ct2 -- stat -c %u:%g /state.txt) == 5:5 ]] || mh_fail "ct2's file owner inside"
[[ $(stat -c %u "$MH_BASE/host2/root/containers/ct2/disk/upper/state.txt") == 165541 ]] ||
  mh_fail "ct2's file on host2's disk: $(stat -c %u "$MH_BASE/host2/root/containers/ct2/disk/upper/state.txt")"
if mh_ctl host1 info ct2 >/dev/null 2>&1; then mh_fail "ct2 is still on host1"; fi
mh_no_migration_files host1 host2
mh_step "ct2 moved live in $(jq -r .downtime_ms <<<"$json") ms of downtime, in its range 165536: counter $before -> $after, same shell, init uid 165536"

# --- live, the range is taken on the target: refused before any freeze
pid1=$(init_pid host1 ct1)
if out=$(mh_ctl host1 migrate ct1 host2 --live 2>&1); then mh_fail "live migration into a taken range worked: $out"; fi
[[ $out == *"id range uids 100000-165535"* ]] || mh_fail "the refusal does not name the range: $out"
[[ $(state host1 ct1) == running && $(init_pid host1 ct1) == "$pid1" ]] ||
  mh_fail "ct1 on host1 changed: $(info host1 ct1 | jq -c '{state, pid}') (init was $pid1) after: $out
$(tail -20 "$MH_BASE/host1/root/containers/ct1/monitor.log" 2>/dev/null)
$(ls "$MH_BASE/host1/root/containers/ct1/")"
if mh_ctl host2 info ct1 >/dev/null 2>&1; then mh_fail "host2 made a ct1"; fi
mh_no_migration_files host1 host2
mh_step "ct1 live into host2, where h2 has its range: \"${out:0:300}\"; ct1 runs on with init $pid1"

# --- cold: a free range of the target, the files shifted into it
json=$(mh_ctl host1 migrate ct1 host2 --cold --json) || mh_fail "cold migration of ct1: $json"
[[ $(state host2 ct1) == running && $(range_of host2 ct1) == 231072 ]] ||
  mh_fail "ct1 on host2: $(info host2 ct1 | jq -c '{state, idmap}')"
pid=$(init_pid host2 ct1)
[[ $(mh_on host2 stat -c %u "/proc/$pid") == 231072 ]] || mh_fail "ct1's init on host2 runs as $(mh_on host2 stat -c %u "/proc/$pid")"
[[ $(mh_ctl host2 exec ct1 -- stat -c %u:%g /state.txt) == 5:5 ]] || mh_fail "ct1's file owner inside"
[[ $(mh_ctl host2 exec ct1 -- cat /state.txt) == ct1 ]] || mh_fail "ct1's file content"
[[ $(stat -c %u:%g "$MH_BASE/host2/root/containers/ct1/disk/upper/state.txt") == 231077:231077 ]] ||
  mh_fail "ct1's file on host2's disk: $(stat -c %u:%g "$MH_BASE/host2/root/containers/ct1/disk/upper/state.txt")"
if mh_ctl host1 info ct1 >/dev/null 2>&1; then mh_fail "ct1 is still on host1"; fi
mh_no_migration_files host1 host2
mh_step "ct1 moved cold into host2's free range 231072: its file is 5:5 inside, 231077 on host2's disk"

mh_scenario_end
echo "vm-migrate-unprivileged: OK ($(($(date +%s) - MH_T0)) s)"
