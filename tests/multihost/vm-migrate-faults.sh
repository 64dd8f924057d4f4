#!/usr/bin/env bash
# Faults during a live migration (run inside tests/vm/run-in-vm.sh by run-vm-migrate-faults.sh),
# issue 13's "every failure leaves the container running on the source and nothing on the
# target", each injected while a container with 96 MiB of anonymous memory (dirtier.c, 1 MiB/s
# rewritten, a count of seconds kept in memory and written to /passes) moves host1 -> host2:
#   1. host2's daemon is SIGKILLed while the pre-copy pages arrive;
#   2. host2's daemon is SIGKILLed after the freeze, as the final images arrive (the arrival, the
#      imported disk pre-sync, and its marker exist): the source restores its checkpoint; host2's
#      next start removes the arrival;
#   3. host2's LAN link goes down while the pages arrive (no FIN, no RST): the source notices
#      within the peer channel's 30 s dead-peer bound; host2's side gives up and cleans by itself.
# After each: the container runs on host1 with its count going on from where it was (its memory
# came back from the checkpoint, not a restart), host2 has no such container, cgroup or file.
# Usage: vm-migrate-faults.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
# shellcheck disable=SC2034 # run by lib.sh's exit trap
MH_ON_EXIT='ip -n mh-lan link set host2 up 2>/dev/null'

passes() { mh_ctl "$1" exec "$2" -- cat /passes 2>/dev/null || echo 0; }
state() { mh_ctl "$1" info "$2" --json | jq -r .state; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s; fails after SECONDS.
wait_for() {
  local n=$(($1 * 10))
  shift
  for _ in $(seq 1 "$n"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
pages_arriving() { [[ -n $(find "$MH_BASE/host2/root" -path '*/migrate-in-*.memory/pre-1/pages-*' -size +1M 2>/dev/null) ]]; }
arriving() { [[ -n $(find "$MH_BASE/host2/root" -maxdepth 1 -name 'migrate-in-*.incoming' 2>/dev/null) ]]; }
# After the freeze: the final images (inventory.img at the top of the memory directory; the
# pre-copy rounds are in pre-K below it) reach host2, whose arrival (the disk pre-sync, imported
# before any freeze) already exists.
final_images_arriving() {
  arriving && [[ -n $(find "$MH_BASE/host2/root" -maxdepth 2 -path '*/migrate-in-*.memory/inventory.img' 2>/dev/null) ]]
}
count_above() { (($(passes host1 "$1") > $2)); }
# The container CT on host1 runs with its memory after a failed move: its count went on from
# BEFORE (read before the move) and keeps going; host2 has nothing of it. Sets now and later.
source_kept() {
  local ct=$1 before=$2
  [[ $(state host1 "$ct") == running ]] || mh_fail "$ct on host1 is $(state host1 "$ct")"
  now=$(passes host1 "$ct")
  ((now >= before)) || mh_fail "$ct's count is $now, it was $before before the move: it started again"
  wait_for 30 count_above "$ct" "$now" || mh_fail "$ct's count on host1 stopped at $now"
  later=$(passes host1 "$ct")
  if mh_ctl host2 info "$ct" >/dev/null 2>&1; then mh_fail "host2 has a $ct"; fi
  [[ ! -d /sys/fs/cgroup/host2/$ct ]] || mh_fail "cgroup /host2/$ct is left"
  mh_no_migration_files host1 host2
}
no_files_on_host2() { [[ -z $(find "$MH_BASE/host2/root" -maxdepth 1 -name 'migrate-*') ]]; }

mh_hosts_up host1:1 host2:2 || mh_fail "the hosts did not come up"
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
mh_rootfs
cp "$MH_BIN/dirtier" "$MH_BASE/rootfs/bin/dirtier"
for h in host1 host2; do
  mh_host_template "$h" || mh_fail "template on $h"
  mh_host_net "$h" || mh_fail "network on $h"
done
for i in 1 2 3; do
  mh_ct_create host1 "f$i" "$i" --memory 512M --init /bin/dirtier 96 1 || mh_fail "f$i on host1"
done
for i in 1 2 3; do
  wait_for 300 count_above "f$i" 2 || mh_fail "f$i's dirtier did not start"
done
mh_step "host1 paired with host2; f1, f2, f3 run on host1, each 96 MiB of memory rewritten at 1 MiB/s"

# --- 1: the target daemon dies while the pre-copy pages arrive
before=$(passes host1 f1)
mh_ctl host1 migrate f1 host2 --live >/tmp/m1.out 2>&1 &
mig=$!
wait_for 300 pages_arriving || mh_fail "no pre-copy pages reached host2: $(cat /tmp/m1.out)"
mh_daemon_kill host2
if wait "$mig"; then mh_fail "the migration of f1 succeeded although host2's daemon was killed"; fi
out=$(cat /tmp/m1.out)
[[ $out == *f1* && $out == *host2* ]] || mh_fail "the error does not name f1 and host2: $out"
mh_daemon_start host2 || mh_fail "host2's daemon did not start again"
source_kept f1 "$before"
mh_step "1: host2's daemon killed during the pre-copy: \"$out\"; f1 runs on host1, count $before -> $now -> $later; host2 (restarted) has nothing"

# --- 2: the target daemon dies after the freeze, while the final images arrive (its arrival, the
# imported disk pre-sync, exists): the source restores its checkpoint
before=$(passes host1 f2)
mh_ctl host1 migrate f2 host2 --live >/tmp/m2.out 2>&1 &
mig=$!
wait_for 600 final_images_arriving || mh_fail "host2 never got the final images of f2: $(cat /tmp/m2.out)"
mh_daemon_kill host2
if wait "$mig"; then mh_fail "the migration of f2 succeeded although host2's daemon was killed"; fi
out=$(cat /tmp/m2.out)
mh_daemon_start host2 || mh_fail "host2's daemon did not start again"
grep -q "f2 arrived by a migration that never finished" "$MH_BASE/host2/bulkheadd.log" ||
  mh_fail "host2's daemon did not say it removed the unfinished f2"
source_kept f2 "$before"
mh_step "2: host2's daemon killed after the freeze, as the final images arrived: \"$out\"; f2 runs on host1, count $before -> $now -> $later; host2 removed its unfinished f2 at its start"

# --- 3: the LAN link of host2 goes down while the pages arrive
before=$(passes host1 f3)
t_cut=0
mh_ctl host1 migrate f3 host2 --live >/tmp/m3.out 2>&1 &
mig=$!
wait_for 300 pages_arriving || mh_fail "no pre-copy pages of f3 reached host2: $(cat /tmp/m3.out)"
ip -n mh-lan link set host2 down
t_cut=$(date +%s)
if wait "$mig"; then mh_fail "the migration of f3 succeeded over a cut link"; fi
noticed=$(($(date +%s) - t_cut))
out=$(cat /tmp/m3.out)
ip -n mh-lan link set host2 up
# host2's side of the transfer gives up by itself (the same 30 s bound) and removes its files.
wait_for 120 no_files_on_host2 ||
  mh_fail "host2 kept the cut transfer's files: $(find "$MH_BASE/host2/root" -maxdepth 1 -name 'migrate-*')"
source_kept f3 "$before"
mh_step "3: host2's link cut during the pre-copy: the source gave up after ${noticed} s: \"$out\"; f3 runs on host1, count $before -> $now -> $later; host2 cleaned up"

mh_scenario_end
echo "vm-migrate-faults: OK ($(($(date +%s) - MH_T0)) s)"
