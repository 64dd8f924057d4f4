#!/usr/bin/env bash
# Evacuation of a host (docs/migration.md "Evacuating a host"; run inside tests/vm/run-in-vm.sh by
# run-vm-evacuate.sh): host1 runs ct1 and ct2 on the routed network lan, has ct3 stopped, and runs
# ct4 on a bridge network only1 that host2 lacks. The dry run says ct1-ct3 would move and ct4 would
# be refused (naming the network), and changes nothing. `host evacuate host2 --parallel 2 --cold`:
# while it runs host1 reports "evacuating" and refuses a create; ct1 and ct2 run on host2 with
# the same addresses and their files (the client pings them there), ct3 is there stopped with its
# file, ct4 runs on on host1 with the same init, and the command fails naming ct4. Afterwards
# host1 is normal again and creates containers. Then host2 is evacuated back to host1 live (the
# default) with --parallel 2: ct1 and ct2 keep what their shells hold in memory.
# Usage: vm-evacuate.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
bb=/bin/busybox
info() { mh_ctl "$1" info "$2" --json; }
init_pid() { info "$1" "$2" | jq -r .pid; }
state() { info "$1" "$2" | jq -r .state; }
names() { mh_ctl "$1" list --json | jq -r '[.[].name] | join(" ")'; }
client_pings() { mh_client $bb ping -c 1 -W 5 "$1" >/dev/null; }

mh_hosts_up host1:1 host2:2 || mh_fail "the hosts did not come up"
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
mh_rootfs || mh_fail "the busybox rootfs"
setup() { mh_host_template "host$1" && mh_host_net "host$1"; }
setup 1 &
p1=$!
setup 2 || mh_fail "host2: template or network lan"
wait "$p1" || mh_fail "host1: template or network lan"
mh_ctl host1 network create only1 --bridge --ipv4 198.18.101.1/24 >/dev/null || mh_fail "network only1 on host1"
# A shell as init (CRIU dumps it in the live phase, as in vm-migrate.sh); it draws a number at its
# start and keeps it only in memory (/r is rewritten from it): a live move keeps the number, a
# restart draws another. It leaves at the template's stop signal (USR2), so a cold stop is quick.
# shellcheck disable=SC2016 # the container's shell expands them
shell_init=(--init /bin/sh -c 'trap "exit 0" USR2 TERM; r=$RANDOM$RANDOM; while :; do echo $r >/r; usleep 200000; done')
mh_ct_create host1 ct1 1 "${shell_init[@]}" || mh_fail "ct1 on host1"
mh_ct_create host1 ct2 2 "${shell_init[@]}" || mh_fail "ct2 on host1"
mh_ctl host1 create ct3 --template busybox \
  --net "lan:ipv4=$(mh_ct_ip4 1 3),ipv6=$(mh_ct_ip6 1 3)" >/dev/null || mh_fail "ct3 on host1"
mh_ctl host1 create ct4 --template busybox --net only1 --start >/dev/null || mh_fail "ct4 on host1"
token=$(date +%s%N)
for c in ct1 ct2 ct4; do
  mh_ctl host1 exec "$c" -- sh -c "echo $c-$token > /state.txt" || mh_fail "writing $c's file"
done
echo "ct3-$token" >"$MH_BASE/host1/root/containers/ct3/disk/upper/state.txt" || mh_fail "writing ct3's file"
declare -A pid
for c in ct1 ct2 ct4; do pid[$c]=$(init_pid host1 "$c"); done
for n in 1 2; do client_pings "$(mh_ct_ip4 1 $n)" || mh_fail "the client cannot ping ct$n on host1"; done
mh_step "host1 runs ct1, ct2 (lan), ct4 (only1, not on host2), has ct3 stopped; each has a file"

# --- dry run: the verdicts, nothing changes
json=$(mh_ctl host1 host evacuate host2 --dry-run --cold --json) || mh_fail "the dry run: $json"
echo "$json"
[[ $(jq -r '[.would_move, .refused] | join(" ")' <<<"$json") == "3 1" ]] || mh_fail "the dry run's counts: $json"
[[ $(jq -r '[.containers[] | .name + ":" + .state + ":" + .mode + ":" + .result] | join(" ")' <<<"$json") == \
  "ct1:running:cold:would-move ct2:running:cold:would-move ct3:stopped:cold:would-move ct4:running:cold:refused" ]] ||
  mh_fail "the dry run's verdicts: $json"
[[ $(jq -r '.containers[3].error' <<<"$json") == *'uses network "only1", which does not exist on host2'* ]] ||
  mh_fail "the dry run does not say why ct4 cannot move: $json"
[[ $(names host1) == "ct1 ct2 ct3 ct4" && -z $(names host2) ]] || mh_fail "the dry run moved something: host1 $(names host1), host2 $(names host2)"
for c in ct1 ct2 ct4; do
  [[ $(state host1 "$c") == running && $(init_pid host1 "$c") == "${pid[$c]}" ]] || mh_fail "$c changed in the dry run"
done
mh_no_migration_files host1 host2
table=$(mh_ctl host1 host evacuate host2 --dry-run --cold) || mh_fail "the dry run (table): $table"
echo "$table"
[[ $table == *"dry run, nothing changed: 3 would move to host2 (198.18.100.2:8443), 1 would be refused"* ]] ||
  mh_fail "the dry run's table: $table"
mh_step "dry run: ct1-ct3 would move, ct4 would be refused; nothing changed"

# --- the evacuation; while it runs, host1 says so and refuses a create
out=$MH_BASE/evacuate.json err=$MH_BASE/evacuate.err
mh_ctl host1 host evacuate host2 --parallel 2 --cold --json >"$out" 2>"$err" &
evac=$!
seen=""
for _ in $(seq 1 100); do
  if [[ $(mh_ctl host1 host info --json | jq -r .state) == evacuating ]]; then
    seen=1
    break
  fi
  sleep 0.1
done
[[ -n $seen ]] || mh_fail "host1 never reported \"evacuating\" (the evacuation: $(cat "$out" "$err"))"
listed=$(mh_ctl host1 list)
if made=$(mh_ctl host1 create ct9 --template busybox 2>&1); then mh_fail "host1 created ct9 while evacuating: $made"; fi
[[ $made == *"host is being evacuated"* ]] || mh_fail "the refused create does not say why: $made"
rc=0
wait "$evac" || rc=$?
json=$(cat "$out") msg=$(cat "$err")
echo "$json"
echo "$msg"
[[ $listed == *"host host1 is being evacuated to host2"* ]] || mh_fail "list did not show the evacuation: $listed"
((rc == 1)) || mh_fail "host evacuate exited $rc although ct4 could not move"
[[ $msg == *"1 of 4 containers did not move and stay here: ct4 ("*'uses network "only1"'* ]] ||
  mh_fail "the failure does not name ct4 and why: $msg"
[[ $(jq -r '[.containers[] | .name + ":" + .result] | join(" ")' <<<"$json") == "ct1:moved ct2:moved ct3:moved ct4:failed" ]] ||
  mh_fail "the results: $json"
[[ $(jq -r '[.moved, .failed, .parallel] | join(" ")' <<<"$json") == "3 1 2" ]] || mh_fail "the counts: $json"
for i in 0 1; do
  (($(jq -r ".containers[$i].downtime_ms" <<<"$json") > 0 && $(jq -r ".containers[$i].bytes" <<<"$json") > 0)) ||
    mh_fail "downtime or bytes of $(jq -c ".containers[$i]" <<<"$json")"
done
mh_step "evacuated with --parallel 2: ct1-ct3 moved, ct4 stayed (\"$msg\"); create refused meanwhile: \"$made\""

# --- where everything is now
[[ $(names host1) == ct4 ]] || mh_fail "host1 keeps $(names host1)"
[[ $(names host2) == "ct1 ct2 ct3" ]] || mh_fail "host2 has $(names host2)"
[[ $(state host1 ct4) == running && $(init_pid host1 ct4) == "${pid[ct4]}" ]] ||
  mh_fail "ct4 on host1: $(info host1 ct4 | jq -c '{state, pid}') (init was ${pid[ct4]})"
[[ $(mh_ctl host1 exec ct4 -- cat /state.txt) == "ct4-$token" ]] || mh_fail "ct4's file on host1"
for n in 1 2 3; do
  c=ct$n ct=$(info host2 "ct$n")
  want=running
  ((n == 3)) && want=stopped
  [[ $(jq -r .state <<<"$ct") == "$want" ]] || mh_fail "$c on host2: $(jq -c . <<<"$ct")"
  [[ $(jq -r '.nics[0].ipv4' <<<"$ct") == "$(mh_ct_ip4 1 $n)"/* && $(jq -r '.nics[0].ipv6' <<<"$ct") == "$(mh_ct_ip6 1 $n)"/* ]] ||
    mh_fail "$c's addresses on host2: $(jq -c .nics <<<"$ct")"
  [[ ! -d /sys/fs/cgroup/host1/$c ]] || mh_fail "cgroup /host1/$c is left"
done
[[ $(cat "$MH_BASE/host2/root/containers/ct3/disk/upper/state.txt") == "ct3-$token" ]] || mh_fail "ct3's file on host2"
for n in 1 2; do
  [[ $(mh_ctl host2 exec "ct$n" -- cat /state.txt) == "ct$n-$token" ]] || mh_fail "ct$n's file on host2"
  client_pings "$(mh_ct_ip4 1 $n)" || mh_fail "the client cannot ping ct$n at $(mh_ct_ip4 1 $n) on host2"
done
mh_client $bb ping -c 1 -W 5 "$(mh_ct_ip6 1 1)" >/dev/null || mh_fail "the client cannot ping ct1 at $(mh_ct_ip6 1 1) on host2"
mh_no_migration_files host1 host2
[[ $(mh_ctl host1 host info --json | jq -r .state) == normal ]] || mh_fail "host1 is still $(mh_ctl host1 host info --json)"
mh_ctl host1 create ct9 --template busybox >/dev/null || mh_fail "host1 refuses creates after the evacuation"
mh_step "ct1, ct2 run on host2 at their addresses with their files (the client pings them), ct3 is there stopped; ct4 runs on host1 with init ${pid[ct4]}; host1 creates again"

# --- back, live (the default for running containers), two at once: host2 -> host1
mh_pair host2 host1 || mh_fail "pairing host2 -> host1"
declare -A drawn
for c in ct1 ct2; do
  drawn[$c]=$(mh_ctl host2 exec "$c" -- cat /r) || mh_fail "reading $c's number on host2"
done
json=$(mh_ctl host2 host evacuate host1 --parallel 2 --json) || mh_fail "evacuating host2 to host1 (live): $json"
echo "$json"
[[ $(jq -r '[.containers[] | .name + ":" + .mode + ":" + .result] | join(" ")' <<<"$json") == \
  "ct1:live:moved ct2:live:moved ct3:cold:moved" ]] || mh_fail "the live evacuation's results: $json"
[[ -z $(names host2) ]] || mh_fail "host2 keeps $(names host2)"
[[ $(names host1) == "ct1 ct2 ct3 ct4 ct9" ]] || mh_fail "host1 has $(names host1)"
for n in 1 2; do
  c=ct$n
  [[ $(state host1 "$c") == running ]] || mh_fail "$c on host1 is $(state host1 "$c")"
  [[ $(mh_ctl host1 exec "$c" -- cat /r) == "${drawn[$c]}" ]] ||
    mh_fail "$c's shell on host1 has $(mh_ctl host1 exec "$c" -- cat /r), it had ${drawn[$c]} on host2: it started again"
  [[ $(mh_ctl host1 exec "$c" -- cat /state.txt) == "$c-$token" ]] || mh_fail "$c's file back on host1"
  client_pings "$(mh_ct_ip4 1 $n)" || mh_fail "the client cannot ping $c back on host1"
done
[[ $(state host1 ct3) == stopped ]] || mh_fail "ct3 on host1 is $(state host1 ct3)"
mh_no_migration_files host1 host2
mh_step "host2 evacuated back to host1 live with --parallel 2: ct1, ct2 run on with their shells' numbers (${drawn[ct1]}, ${drawn[ct2]}), ct3 stopped; downtimes $(jq -r '[.containers[].downtime_ms] | join(", ")' <<<"$json") ms"

mh_scenario_end
echo "vm-evacuate: OK ($(($(date +%s) - MH_T0)) s)"
