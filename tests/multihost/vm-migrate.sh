#!/usr/bin/env bash
# Migration between simulated hosts (run inside tests/vm/run-in-vm.sh by run-vm-migrate.sh):
# host1 pairs with host2 and host3; its containers keep files they wrote. Refusals leave the source
# as it was: host3 has a container named ct1 and host2 lacks ct4's network (refused before
# anything stops: same init); host2 holds ct2's address (the import fails after the source
# stopped, cold and live: ct2 runs again on host1 with its file, host2 has nothing of it); host3
# dead (cannot reach it: same init). ct1 moves cold to host2: it runs there with the same
# addresses, MAC and limits and its file, the client pings it and reaches its TCP server; on host1
# `info ct1` errors and no cgroup or temporary file is left. ct3 moves live: its shell's counter,
# kept only in memory, goes on from where it was.
# Usage: vm-migrate.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=lib.sh
source "$here/lib.sh"
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "FAIL: $*" >&2
  local h
  for h in $(mh_hosts); do
    echo "--- $h: bulkheadd log" >&2
    tail -30 "$MH_BASE/$h/bulkheadd.log" >&2 || true
  done
  exit 1
}
torn_down=""
cleanup() { [[ -n $torn_down ]] || mh_teardown || true; }
trap cleanup EXIT
bb=/bin/busybox
info() { mh_ctl "$1" info "$2" --json; }
init_pid() { info "$1" "$2" | jq -r .pid; }
state() { info "$1" "$2" | jq -r .state; }
# No export or transfer file may outlive a migration, on either side.
no_temp_files() {
  local h left
  for h in "$@"; do
    left=$(find "$MH_BASE/$h/root" -maxdepth 1 -name 'migrate-*' 2>/dev/null)
    [[ -z $left ]] || fail "$h keeps migration files: $left"
  done
}
# The client's ARP entry for IP holds HOST's LAN MAC (the one that answers for a routed address):
# a start announces its addresses (docs/network.md), so the entry moves before the client asks.
client_entry_at() {
  local want got
  want=$(ip -n "mh-$2" -j link show lan0 | jq -r '.[0].address')
  got=$(ip -n mh-client -j neigh show "$1" | jq -r '.[0].lladdr // empty')
  [[ $got == "$want" ]] || fail "the client's entry for $1 is \"$got\", not $2's MAC $want"
}
client_pings() { mh_client $bb ping -c 1 -W 5 "$1" >/dev/null; }

mh_hosts_up host1:1 host2:2 host3:3 || fail "the hosts did not come up"
mh_pair host1 host2 || fail "pairing host1 -> host2"
mh_pair host1 host3 || fail "pairing host1 -> host3"
mh_rootfs || fail "the busybox rootfs"
setup() { mh_host_template "host$1" && mh_host_net "host$1"; }
pids=()
for i in 1 2 3; do
  setup "$i" &
  pids+=($!)
done
for i in 1 2 3; do wait "${pids[i - 1]}" || fail "host$i: template or network lan"; done
mh_ct_create host1 ct1 1 --memory 64M --pids 100 || fail "ct1 on host1"
# A shell as init (as tests/migration/vm-daemon-checkpoint.sh): what CRIU dumps in the live cases.
mh_ct_create host1 ct2 2 --init /bin/sh -c 'while :; do usleep 200000; done' || fail "ct2 on host1"
token=$(date +%s%N)
mh_ctl host1 exec ct1 -- sh -c "echo $token > /state.txt" || fail "writing ct1's file"
mh_ctl host1 exec ct2 -- sh -c "echo two-$token > /state.txt" || fail "writing ct2's file"
ip4=$(mh_ct_ip4 1 1) ip6=$(mh_ct_ip6 1 1)
mac=$(info host1 ct1 | jq -r '.nics[0].mac')
step "host1 paired with host2 and host3; ct1 ($ip4, $mac) and ct2 run on host1 with a file each"

# --- the name exists on the target: refused before the source stops
mh_ctl host3 create ct1 --template busybox >/dev/null || fail "ct1 on host3"
pid1=$(init_pid host1 ct1)
if out=$(mh_ctl host1 migrate ct1 host3 2>&1); then fail "migrating onto an existing name worked: $out"; fi
[[ $out == *'container "ct1" already exists on host3'* && $out == *198.18.100.3:8443* ]] ||
  fail "the refusal does not say why: $out"
[[ $(state host1 ct1) == running && $(init_pid host1 ct1) == "$pid1" ]] ||
  fail "ct1 on host1 changed: $(info host1 ct1 | jq -c '{state, pid}') (init was $pid1)"
[[ $(mh_ctl host3 info ct1 --json | jq -r .state) == stopped ]] || fail "host3's ct1 changed"
no_temp_files host1 host3
step "name taken on host3: \"$out\"; ct1 runs on host1 with the same init $pid1"

# --- a network the target lacks: refused before anything changes
mh_ctl host1 network create only1 --bridge --ipv4 198.18.101.1/24 >/dev/null || fail "network only1 on host1"
mh_ctl host1 create ct4 --template busybox --net only1 >/dev/null || fail "ct4 on host1"
if out=$(mh_ctl host1 migrate ct4 host2 2>&1); then fail "migrating onto a host without the network worked: $out"; fi
[[ $out == *'uses network "only1", which does not exist on host2'* && $out == *198.18.100.2:8443* ]] ||
  fail "the missing network: $out"
[[ $(state host1 ct4) == stopped ]] || fail "ct4 on host1 is $(state host1 ct4)"
if mh_ctl host2 info ct4 >/dev/null 2>&1; then fail "host2 made a ct4"; fi
no_temp_files host1 host2
mh_ctl host1 destroy ct4 >/dev/null || fail "removing ct4"
step "network missing on host2: \"$out\"; ct4 stays on host1"

# --- the import fails on the target after the source stopped: the source runs again
mh_ctl host2 create blocker --template busybox \
  --net "lan:ipv4=$(mh_ct_ip4 1 2),ipv6=$(mh_ct_ip6 1 2)" >/dev/null || fail "blocker on host2"
if out=$(mh_ctl host1 migrate ct2 host2 --cold 2>&1); then fail "migrating (cold) onto a taken address worked: $out"; fi
[[ $out == *ct2* && $out == *host2* ]] || fail "the failed import (cold) does not name the container and remote: $out"
[[ $(state host1 ct2) == running ]] || fail "ct2 on host1 is $(state host1 ct2) after the failed migration (cold)"
[[ $(mh_ctl host1 exec ct2 -- cat /state.txt) == "two-$token" ]] || fail "ct2 lost its file (cold)"
if mh_ctl host2 info ct2 >/dev/null 2>&1; then fail "host2 kept a ct2 after the failed import (cold)"; fi
[[ $(mh_ctl host1 snapshot list ct2 --json | jq length) == 0 ]] || fail "host1 keeps a snapshot of ct2 (cold)"
no_temp_files host1 host2
step "import failed on host2 (cold): \"$out\"; ct2 runs on host1 again with its file"
mh_ctl host2 destroy blocker >/dev/null || fail "removing blocker"

# --- the move (the client talked to ct1 on host1 before: its ARP entry has host1's MAC)
client_pings "$ip4" || fail "the client cannot ping ct1 at $ip4 on host1"
client_entry_at "$ip4" host1
json=$(mh_ctl host1 migrate ct1 host2 --cold --json) || fail "migrating ct1 to host2: $json"
echo "$json"
[[ $(jq -r '.mode + " " + .remote + " " + (.was_running | tostring)' <<<"$json") == "cold host2 true" ]] ||
  fail "the result: $json"
down=$(jq -r .downtime_ms <<<"$json") bytes=$(jq -r .bytes <<<"$json")
((down > 0 && bytes > 0)) || fail "downtime_ms $down, bytes $bytes"
ct=$(info host2 ct1)
[[ $(jq -r .state <<<"$ct") == running ]] || fail "ct1 on host2: $(jq -c . <<<"$ct")"
[[ $(jq -r '.nics[0].ipv4' <<<"$ct") == "$ip4"/* && $(jq -r '.nics[0].ipv6' <<<"$ct") == "$ip6"/* ]] ||
  fail "ct1's addresses on host2: $(jq -c .nics <<<"$ct")"
[[ $(jq -r '.nics[0].mac' <<<"$ct") == "$mac" ]] || fail "ct1's MAC on host2: $(jq -r '.nics[0].mac' <<<"$ct"), was $mac"
[[ $(jq -c '[.limits.memory, .limits.pids]' <<<"$ct") == '[67108864,100]' ]] || fail "ct1's limits on host2: $(jq -c .limits <<<"$ct")"
[[ $(mh_ctl host2 exec ct1 -- cat /state.txt) == "$token" ]] || fail "ct1's file on host2"
[[ -n $(find /sys/fs/cgroup/host2/ct1 -name cgroup.procs -exec cat {} + 2>/dev/null) ]] || fail "ct1 has no process under /host2/ct1"
if out=$(mh_ctl host1 info ct1 2>&1); then fail "ct1 is still on host1: $out"; fi
[[ ! -d /sys/fs/cgroup/host1/ct1 ]] || fail "cgroup /host1/ct1 is left"
no_temp_files host1 host2
step "ct1 moved to host2 in ${down} ms of downtime ($bytes bytes): running, same addresses and MAC, its file; gone from host1 ($out)"
client_entry_at "$ip4" host2
client_pings "$ip4" || fail "the client cannot ping ct1 at $ip4 on host2"
mh_client $bb ping -c 1 -W 5 "$ip6" >/dev/null || fail "the client cannot ping ct1 at $ip6 on host2"
mh_ctl host2 exec ct1 -- nc -l -p 7000 -e hostname >/dev/null 2>&1 &
listener=$! seen=""
for _ in $(seq 1 100); do
  [[ $(mh_ctl host2 exec ct1 -- netstat -tln 2>/dev/null) == *":7000 "* ]] && break
  sleep 0.2
done
for _ in $(seq 1 20); do
  seen=$(mh_client $bb nc -w 5 "$ip4" 7000 2>/dev/null || true)
  [[ -n $seen ]] && break
  sleep 0.2
done
[[ -n $seen ]] || fail "no answer over TCP from ct1 at $ip4:7000 on host2"
wait "$listener" || true
[[ $seen == ct1 ]] || fail "TCP to ct1 on host2 answered \"$seen\""
step "the client's ARP entry moved to host2's MAC at the start; it pings ct1 at $ip4 and $ip6 and its TCP server on host2 answers \"$seen\""

# --- the remote is dead: refused before the source stops
pid2=$(init_pid host1 ct2)
mh_kill_host host3 || fail "killing host3"
if out=$(mh_ctl host1 migrate ct2 host3 2>&1); then fail "migrating to a dead host worked: $out"; fi
[[ $out == *"cannot reach remote host3 (198.18.100.3:8443)"* ]] || fail "the unreachable remote: $out"
[[ $(state host1 ct2) == running && $(init_pid host1 ct2) == "$pid2" ]] ||
  fail "ct2 on host1 changed: $(info host1 ct2 | jq -c '{state, pid}') (init was $pid2)"
no_temp_files host1
step "host3 dead: \"$out\"; ct2 runs on host1 with the same init $pid2"

# --- live, the import fails on the target: the source restores its checkpoint and runs on
mh_ctl host2 create blocker --template busybox \
  --net "lan:ipv4=$(mh_ct_ip4 1 2),ipv6=$(mh_ct_ip6 1 2)" >/dev/null || fail "blocker on host2 again"
if out=$(mh_ctl host1 migrate ct2 host2 --live 2>&1); then fail "migrating (--live) onto a taken address worked: $out"; fi
[[ $out == *ct2* && $out == *host2* ]] || fail "the failed live import does not name the container and remote: $out"
[[ $(state host1 ct2) == running ]] || fail "ct2 on host1 is $(state host1 ct2) after the failed live migration"
[[ $(mh_ctl host1 exec ct2 -- cat /state.txt) == "two-$token" ]] || fail "ct2 lost its file (--live)"
if mh_ctl host2 info ct2 >/dev/null 2>&1; then fail "host2 kept a ct2 after the failed live import"; fi
[[ $(mh_ctl host1 snapshot list ct2 --json | jq length) == 0 ]] || fail "host1 keeps the checkpoint of ct2"
no_temp_files host1 host2
mh_ctl host2 destroy blocker >/dev/null || fail "removing blocker"
step "live import failed on host2: \"$out\"; ct2 runs on host1 again from its checkpoint"

# --- live: a counter that lives only in the shell's memory continues on host2
# (written to /count every 0.2 s; a cold move would start it again from 1)
# The shell also keeps a random number it drew at its start: a restarted shell would draw another.
# shellcheck disable=SC2016 # the container's shell expands them
mh_ct_create host1 ct3 3 --init /bin/sh -c 'r=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$r $i" >/count; usleep 200000; done' ||
  fail "ct3 on host1"
count() { mh_ctl "$1" exec ct3 -- cat /count 2>/dev/null | awk '{print $2}' | grep . || echo 0; }
draw() { mh_ctl "$1" exec ct3 -- cat /count 2>/dev/null | awk '{print $1}'; }
for _ in $(seq 1 300); do
  (($(count host1) >= 30)) && break
  sleep 0.5
done
before=$(count host1)
((before >= 30)) || fail "ct3's counter is at $before on host1"
r1=$(draw host1)
[[ -n $r1 ]] || fail "ct3's shell has no number"
client_pings "$(mh_ct_ip4 1 3)" || fail "the client cannot ping ct3 on host1"
json=$(mh_ctl host1 migrate ct3 host2 --live --json) || fail "live migration of ct3 to host2: $json"
echo "$json"
[[ $(jq -r .mode <<<"$json") == live ]] || fail "the result: $json"
after=$(count host2)
((after >= before)) || fail "ct3's counter on host2 is $after, it was $before on host1: it started again"
[[ $(draw host2) == "$r1" ]] || fail "ct3's shell on host2 drew $(draw host2), on host1 $r1: it started again"
sleep 2
later=$(count host2)
((later > after)) || fail "ct3's counter on host2 stopped at $after"
if mh_ctl host1 info ct3 >/dev/null 2>&1; then fail "ct3 is still on host1"; fi
[[ ! -d /sys/fs/cgroup/host1/ct3 ]] || fail "cgroup /host1/ct3 is left"
[[ $(mh_ctl host2 snapshot list ct3 --json | jq length) == 0 ]] || fail "host2 keeps the migration's snapshot"
no_temp_files host1 host2
client_entry_at "$(mh_ct_ip4 1 3)" host2
client_pings "$(mh_ct_ip4 1 3)" || fail "the client cannot ping ct3 at $(mh_ct_ip4 1 3) on host2"
step "live: ct3's shell (number $r1) went on counting from $before (host1) to $after, then $later (host2); downtime $(jq -r .downtime_ms <<<"$json") ms"

torn_down=1
mh_teardown || fail "teardown"
left=$(mh_leftovers)
[[ -z $left ]] || fail "teardown left: $left"
step "teardown: nothing left"
echo "vm-migrate: OK ($(($(date +%s) - t0)) s)"
