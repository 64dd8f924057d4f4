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
# shellcheck disable=SC2034 # run by lib.sh's exit trap
MH_ON_EXIT='[[ -z ${tcp_client:-} ]] || kill "$tcp_client" 2>/dev/null'
mh_scenario_begin
bb=/bin/busybox
info() { mh_ctl "$1" info "$2" --json; }
init_pid() { info "$1" "$2" | jq -r .pid; }
state() { info "$1" "$2" | jq -r .state; }
# The client's ARP entry for IP holds HOST's LAN MAC (the one that answers for a routed address):
# a start announces its addresses (docs/network.md), so the entry moves before the client asks.
client_entry_at() {
  local want got
  want=$(ip -n "mh-$2" -j link show lan0 | jq -r '.[0].address')
  got=$(ip -n mh-client -j neigh show "$1" | jq -r '.[0].lladdr // empty')
  [[ $got == "$want" ]] || mh_fail "the client's entry for $1 is \"$got\", not $2's MAC $want"
}
client_pings() { mh_client $bb ping -c 1 -W 5 "$1" >/dev/null; }

mh_hosts_up host1:1 host2:2 host3:3 || mh_fail "the hosts did not come up"
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
mh_pair host1 host3 || mh_fail "pairing host1 -> host3"
mh_rootfs || mh_fail "the busybox rootfs"
setup() { mh_host_template "host$1" && mh_host_net "host$1"; }
pids=()
for i in 1 2 3; do
  setup "$i" &
  pids+=($!)
done
for i in 1 2 3; do wait "${pids[i - 1]}" || mh_fail "host$i: template or network lan"; done
mh_ct_create host1 ct1 1 --memory 64M --pids 100 || mh_fail "ct1 on host1"
# A shell as init (as tests/migration/vm-daemon-checkpoint.sh): what CRIU dumps in the live cases.
mh_ct_create host1 ct2 2 --init /bin/sh -c 'while :; do usleep 200000; done' || mh_fail "ct2 on host1"
token=$(date +%s%N)
mh_ctl host1 exec ct1 -- sh -c "echo $token > /state.txt" || mh_fail "writing ct1's file"
mh_ctl host1 exec ct2 -- sh -c "echo two-$token > /state.txt" || mh_fail "writing ct2's file"
ip4=$(mh_ct_ip4 1 1) ip6=$(mh_ct_ip6 1 1)
mac=$(info host1 ct1 | jq -r '.nics[0].mac')
mh_step "host1 paired with host2 and host3; ct1 ($ip4, $mac) and ct2 run on host1 with a file each"

# --- the name exists on the target: refused before the source stops
mh_ctl host3 create ct1 --template busybox >/dev/null || mh_fail "ct1 on host3"
pid1=$(init_pid host1 ct1)
if out=$(mh_ctl host1 migrate ct1 host3 2>&1); then mh_fail "migrating onto an existing name worked: $out"; fi
[[ $out == *'container "ct1" already exists on host3'* && $out == *198.18.100.3:8443* ]] ||
  mh_fail "the refusal does not say why: $out"
[[ $(state host1 ct1) == running && $(init_pid host1 ct1) == "$pid1" ]] ||
  mh_fail "ct1 on host1 changed: $(info host1 ct1 | jq -c '{state, pid}') (init was $pid1)"
[[ $(mh_ctl host3 info ct1 --json | jq -r .state) == stopped ]] || mh_fail "host3's ct1 changed"
mh_no_migration_files host1 host3
mh_step "name taken on host3: \"$out\"; ct1 runs on host1 with the same init $pid1"

# --- a network the target lacks: refused before anything changes
mh_ctl host1 network create only1 --bridge --ipv4 198.18.101.1/24 >/dev/null || mh_fail "network only1 on host1"
mh_ctl host1 create ct4 --template busybox --net only1 >/dev/null || mh_fail "ct4 on host1"
if out=$(mh_ctl host1 migrate ct4 host2 2>&1); then mh_fail "migrating onto a host without the network worked: $out"; fi
[[ $out == *'uses network "only1", which does not exist on host2'* && $out == *198.18.100.2:8443* ]] ||
  mh_fail "the missing network: $out"
[[ $(state host1 ct4) == stopped ]] || mh_fail "ct4 on host1 is $(state host1 ct4)"
if mh_ctl host2 info ct4 >/dev/null 2>&1; then mh_fail "host2 made a ct4"; fi
mh_no_migration_files host1 host2
mh_ctl host1 destroy ct4 >/dev/null || mh_fail "removing ct4"
mh_step "network missing on host2: \"$out\"; ct4 stays on host1"

# ct2_stayed WHAT: after a migration of ct2 to host2 failed with $out, ct2 runs on host1 with its
# file, host2 has no ct2, host1 keeps no snapshot and neither host a migration file.
ct2_stayed() {
  [[ $out == *ct2* && $out == *host2* ]] || mh_fail "the failed $1 does not name the container and remote: $out"
  [[ $(state host1 ct2) == running ]] || mh_fail "ct2 on host1 is $(state host1 ct2) after the failed $1: $out"
  [[ $(mh_ctl host1 exec ct2 -- cat /state.txt) == "two-$token" ]] || mh_fail "ct2 lost its file ($1)"
  if mh_ctl host2 info ct2 >/dev/null 2>&1; then mh_fail "host2 kept a ct2 after the failed $1"; fi
  [[ $(mh_ctl host1 snapshot list ct2 --json | jq length) == 0 ]] || mh_fail "host1 keeps a snapshot of ct2 ($1)"
  mh_no_migration_files host1 host2
}

# --- the import fails on the target after the source stopped: the source runs again
mh_ctl host2 create blocker --template busybox \
  --net "lan:ipv4=$(mh_ct_ip4 1 2),ipv6=$(mh_ct_ip6 1 2)" >/dev/null || mh_fail "blocker on host2"
if out=$(mh_ctl host1 migrate ct2 host2 --cold 2>&1); then mh_fail "migrating (cold) onto a taken address worked: $out"; fi
ct2_stayed "import (cold)"
mh_step "import failed on host2 (cold): \"$out\"; ct2 runs on host1 again with its file"
mh_ctl host2 destroy blocker >/dev/null || mh_fail "removing blocker"

# --- the move (the client talked to ct1 on host1 before: its ARP entry has host1's MAC)
client_pings "$ip4" || mh_fail "the client cannot ping ct1 at $ip4 on host1"
client_entry_at "$ip4" host1
json=$(mh_ctl host1 migrate ct1 host2 --cold --json) || mh_fail "migrating ct1 to host2: $json"
echo "$json"
[[ $(jq -r '.mode + " " + .remote + " " + (.was_running | tostring)' <<<"$json") == "cold host2 true" ]] ||
  mh_fail "the result: $json"
down=$(jq -r .downtime_ms <<<"$json") bytes=$(jq -r .bytes <<<"$json")
((down > 0 && bytes > 0)) || mh_fail "downtime_ms $down, bytes $bytes"
ct=$(info host2 ct1)
[[ $(jq -r .state <<<"$ct") == running ]] || mh_fail "ct1 on host2: $(jq -c . <<<"$ct")"
[[ $(jq -r '.nics[0].ipv4' <<<"$ct") == "$ip4"/* && $(jq -r '.nics[0].ipv6' <<<"$ct") == "$ip6"/* ]] ||
  mh_fail "ct1's addresses on host2: $(jq -c .nics <<<"$ct")"
[[ $(jq -r '.nics[0].mac' <<<"$ct") == "$mac" ]] || mh_fail "ct1's MAC on host2: $(jq -r '.nics[0].mac' <<<"$ct"), was $mac"
[[ $(jq -c '[.limits.memory, .limits.pids]' <<<"$ct") == '[67108864,100]' ]] || mh_fail "ct1's limits on host2: $(jq -c .limits <<<"$ct")"
[[ $(mh_ctl host2 exec ct1 -- cat /state.txt) == "$token" ]] || mh_fail "ct1's file on host2"
[[ -n $(find /sys/fs/cgroup/host2/ct1 -name cgroup.procs -exec cat {} + 2>/dev/null) ]] || mh_fail "ct1 has no process under /host2/ct1"
if out=$(mh_ctl host1 info ct1 2>&1); then mh_fail "ct1 is still on host1: $out"; fi
[[ ! -d /sys/fs/cgroup/host1/ct1 ]] || mh_fail "cgroup /host1/ct1 is left"
mh_no_migration_files host1 host2
mh_step "ct1 moved to host2 in ${down} ms of downtime ($bytes bytes): running, same addresses and MAC, its file; gone from host1 ($out)"
client_entry_at "$ip4" host2
client_pings "$ip4" || mh_fail "the client cannot ping ct1 at $ip4 on host2"
mh_client $bb ping -c 1 -W 5 "$ip6" >/dev/null || mh_fail "the client cannot ping ct1 at $ip6 on host2"
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
[[ -n $seen ]] || mh_fail "no answer over TCP from ct1 at $ip4:7000 on host2"
wait "$listener" || true
[[ $seen == ct1 ]] || mh_fail "TCP to ct1 on host2 answered \"$seen\""
mh_step "the client's ARP entry moved to host2's MAC at the start; it pings ct1 at $ip4 and $ip6 and its TCP server on host2 answers \"$seen\""

# --- the remote is dead: refused before the source stops
pid2=$(init_pid host1 ct2)
mh_kill_host host3 || mh_fail "killing host3"
if out=$(mh_ctl host1 migrate ct2 host3 2>&1); then mh_fail "migrating to a dead host worked: $out"; fi
[[ $out == *"cannot reach remote host3 (198.18.100.3:8443)"* ]] || mh_fail "the unreachable remote: $out"
[[ $(state host1 ct2) == running && $(init_pid host1 ct2) == "$pid2" ]] ||
  mh_fail "ct2 on host1 changed: $(info host1 ct2 | jq -c '{state, pid}') (init was $pid2)"
mh_no_migration_files host1
mh_step "host3 dead: \"$out\"; ct2 runs on host1 with the same init $pid2"

# --- live, the import of the disk pre-sync fails on the target (before any freeze): ct2 runs on
mh_ctl host2 create blocker --template busybox \
  --net "lan:ipv4=$(mh_ct_ip4 1 2),ipv6=$(mh_ct_ip6 1 2)" >/dev/null || mh_fail "blocker on host2 again"
if out=$(mh_ctl host1 migrate ct2 host2 --live 2>&1); then mh_fail "migrating (--live) onto a taken address worked: $out"; fi
ct2_stayed "live import"
mh_ctl host2 destroy blocker >/dev/null || mh_fail "removing blocker"
mh_step "live import failed on host2: \"$out\"; ct2 runs on host1 (no freeze happened)"

# --- live, the restore fails on the target after the freeze (host2's CRIU fails): the source
# restores its own checkpoint and runs on
criu_bin=$(command -v criu)
printf '#!/bin/sh\necho "injected failure" >&2\nexit 1\n' >/tmp/vm-migrate-criu-fails
chmod +x /tmp/vm-migrate-criu-fails
mh_on host2 mount --bind /tmp/vm-migrate-criu-fails "$criu_bin" || mh_fail "injecting a failing CRIU on host2"
if out=$(mh_ctl host1 migrate ct2 host2 --live 2>&1); then mh_fail "migrating (--live) with CRIU failing on host2 worked: $out"; fi
mh_on host2 umount "$criu_bin" || mh_fail "removing the failing CRIU of host2"
ct2_stayed "live restore"
mh_step "live restore failed on host2 after the freeze: \"${out:0:300}\"; ct2 runs on host1 again from its checkpoint"

# --- live: a counter that lives only in the shell's memory continues on host2
# (written to /count every 0.2 s; a cold move would start it again from 1)
# The shell also keeps a random number it drew at its start: a restarted shell would draw another.
# shellcheck disable=SC2016 # the container's shell expands them
# It also serves TCP on port 7000 (busybox nc echoing through cat): a client outside both hosts
# keeps one connection open across the move, sending a line every 0.5 s and reading it back.
# Its disk: /log gets each count appended, so it changes after the disk pre-sync copied it and
# through the pre-copy; on host2 it must run 1, 2, 3, ... without a gap (a change the final,
# incremental export missed would leave one), and a 2 MiB file written before the move arrives
# whole.
mh_ct_create host1 ct3 3 --init /bin/sh -c 'nc -ll -p 7000 -e /bin/cat & r=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$r $i" >/count; echo $i >>/log; usleep 200000; done' ||
  mh_fail "ct3 on host1"
count() { mh_ctl "$1" exec ct3 -- cat /count 2>/dev/null | awk '{print $2}' | grep . || echo 0; }
draw() { mh_ctl "$1" exec ct3 -- cat /count 2>/dev/null | awk '{print $1}'; }
for _ in $(seq 1 300); do
  (($(count host1) >= 30)) && break
  sleep 0.5
done
before=$(count host1)
((before >= 30)) || mh_fail "ct3's counter is at $before on host1"
r1=$(draw host1)
[[ -n $r1 ]] || mh_fail "ct3's shell has no number"
client_pings "$(mh_ct_ip4 1 3)" || mh_fail "the client cannot ping ct3 on host1"
mh_ctl host1 exec ct3 -- dd if=/dev/urandom of=/blob bs=64k count=32 2>/dev/null || mh_fail "writing /blob in ct3"
blob_sum=$(mh_ctl host1 exec ct3 -- md5sum /blob | cut -d' ' -f1)
tcp_log=/tmp/vm-migrate-tcp.log
: >"$tcp_log"
# One connection for the whole test: a broken one (reset, or no echo within 60 s) ends the client.
# shellcheck disable=SC2016 # the client's bash expands them
mh_client bash -c 'exec 3<>"/dev/tcp/$1/7000" || exit 1
  for ((i = 1; ; i++)); do
    echo "line $i" >&3
    read -r -t 60 got <&3 || { echo "LOST $i" >>"$2"; exit 1; }
    echo "$got" >>"$2"
    sleep 0.5
  done' tcp-client "$(mh_ct_ip4 1 3)" "$tcp_log" &
tcp_client=$!
tcp_lines() { grep -c '^line ' "$tcp_log" || true; }
for _ in $(seq 1 120); do
  (($(tcp_lines) >= 3)) && break
  sleep 0.5
done
(($(tcp_lines) >= 3)) || mh_fail "the TCP client got no echo from ct3 on host1: $(cat "$tcp_log")"
json=$(mh_ctl host1 migrate ct3 host2 --live --json) || mh_fail "live migration of ct3 to host2: $json"
echo "$json"
[[ $(jq -r .mode <<<"$json") == live ]] || mh_fail "the result: $json"
# Pre-copy: at least one round moved the memory while ct3 ran; the freeze is part of the total.
(($(jq -r .iterations <<<"$json") >= 1 && $(jq -r .precopy_bytes <<<"$json") > 0)) ||
  mh_fail "no pre-copy round: $json"
(($(jq -r .total_ms <<<"$json") >= $(jq -r .downtime_ms <<<"$json"))) || mh_fail "total_ms < downtime_ms: $json"
# Disk pre-sync: the upper layer went while ct3 ran; the freeze sent only what changed since.
(($(jq -r .presync_bytes <<<"$json") > 2000000)) || mh_fail "no disk pre-sync with /blob in it: $json"
(($(jq -r .export_bytes <<<"$json") < 1000000)) || mh_fail "the final export is not incremental: $json"
tcp_at_move=$(tcp_lines)
for _ in $(seq 1 120); do
  (($(tcp_lines) >= tcp_at_move + 4)) && break
  kill -0 "$tcp_client" 2>/dev/null || break
  sleep 0.5
done
kill -0 "$tcp_client" 2>/dev/null || mh_fail "the TCP connection to ct3 broke across the move: $(tail -3 "$tcp_log")"
(($(tcp_lines) >= tcp_at_move + 4)) || mh_fail "no echo on the TCP connection after the move: $(tail -3 "$tcp_log")"
kill "$tcp_client" 2>/dev/null
wait "$tcp_client" 2>/dev/null || true # its status is the kill's
tcp_after=$(tcp_lines)
after=$(count host2)
((after >= before)) || mh_fail "ct3's counter on host2 is $after, it was $before on host1: it started again"
[[ $(draw host2) == "$r1" ]] || mh_fail "ct3's shell on host2 drew $(draw host2), on host1 $r1: it started again"
gap=$(mh_ctl host2 exec ct3 -- awk 'NR != $1 {print "line " NR " holds " $1; exit} END {print NR}' /log)
[[ $gap =~ ^[0-9]+$ ]] || mh_fail "ct3's /log on host2 has a gap: $gap"
((gap >= before)) || mh_fail "ct3's /log on host2 ends at $gap, the counter was at $before before the move"
[[ $(mh_ctl host2 exec ct3 -- md5sum /blob | cut -d' ' -f1) == "$blob_sum" ]] || mh_fail "/blob differs on host2"
sleep 2
later=$(count host2)
((later > after)) || mh_fail "ct3's counter on host2 stopped at $after"
if mh_ctl host1 info ct3 >/dev/null 2>&1; then mh_fail "ct3 is still on host1"; fi
[[ ! -d /sys/fs/cgroup/host1/ct3 ]] || mh_fail "cgroup /host1/ct3 is left"
[[ $(mh_ctl host2 snapshot list ct3 --json | jq length) == 0 ]] || mh_fail "host2 keeps the migration's snapshot"
mh_no_migration_files host1 host2
client_entry_at "$(mh_ct_ip4 1 3)" host2
client_pings "$(mh_ct_ip4 1 3)" || mh_fail "the client cannot ping ct3 at $(mh_ct_ip4 1 3) on host2"
mh_step "live: ct3's shell (number $r1) went on counting from $before (host1) to $after, then $later (host2); downtime $(jq -r .downtime_ms <<<"$json") ms after $(jq -r .iterations <<<"$json") pre-copy round(s) and a disk pre-sync of $(jq -r .presync_bytes <<<"$json") bytes (final export $(jq -r .export_bytes <<<"$json") bytes; /log gapless to $gap); one TCP connection from the client echoed $tcp_at_move lines before the move and $tcp_after in all"

mh_scenario_end
echo "vm-migrate: OK ($(($(date +%s) - MH_T0)) s)"
