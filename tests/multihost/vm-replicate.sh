#!/usr/bin/env bash
# Continuous replication between simulated hosts (run inside tests/vm/run-in-vm.sh by
# run-vm-replicate.sh; docs/replication.md): a counter container on host1 (its shell keeps an
# increasing number in memory and writes it to /count each second) is protected to host2 in memory
# mode every 2 s. host2 holds its replica (one complete set; later sets carry only the pages
# dirtied since the one before); info shows the replication's fields; the pause per set and the
# bytes per set of this idle container are measured. Then host1 dies as a whole (SIGKILL of its
# pid-namespace init, its LAN link gone) and `replica activate` on host2 resumes the counter from
# at least the last replicated value (same shell: restored from memory, not booted) with the same
# address, which the client pings.
# Usage: vm-replicate.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
# vm-replicate-unprivileged.sh runs this scenario with unprivileged containers (roots on ext4).
MH_BASE=${MH_REPLICATE_BASE:-/tmp/bulkhead-mh}
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
bb=/bin/busybox
info() { mh_ctl "$1" info "$2" --json; }
repl() { info "$1" "$2" | jq -c .replication; }

mh_hosts_up host1:1 host2:2 || mh_fail "the hosts did not come up"
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
mh_rootfs || mh_fail "the busybox rootfs"
# The template only on host1: the first set carries it to host2.
mh_host_template host1 || mh_fail "template on host1"
mh_host_net host1 || mh_fail "network lan on host1"
mh_host_net host2 || mh_fail "network lan on host2"
# shellcheck disable=SC2016 # the container's shell expands them
mh_ct_create host1 ct1 1 --memory 64M --pids 100 \
  --init /bin/sh -c 'r=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$r $i" >/count; echo "$i $(readlink /proc/self/ns/net)" >>/hist; sleep 1; done' ||
  mh_fail "ct1 on host1"
ip4=$(mh_ct_ip4 1 1) ip6=$(mh_ct_ip6 1 1)
count() { mh_ctl "$1" exec ct1 -- cat /count 2>/dev/null | awk '{print $2}' | grep . || echo 0; }
draw() { mh_ctl "$1" exec ct1 -- cat /count 2>/dev/null | awk '{print $1}'; }
for _ in $(seq 1 120); do
  (($(count host1) >= 3)) && break
  sleep 0.5
done
((($(count host1)) >= 3)) || mh_fail "ct1's counter does not run on host1"
r1=$(draw host1)
mh_step "ct1 ($ip4) counts on host1 (its shell drew $r1)"

# --- refusals: this host as standby, an unknown standby
if out=$(mh_ctl host1 protect ct1 --standby host1 2>&1); then mh_fail "protect with this host as standby worked: $out"; fi
[[ $out == *'standby "host1" is this host'* ]] || mh_fail "standby = source: $out"
if out2=$(mh_ctl host1 protect ct1 --standby host9 2>&1); then mh_fail "protect to an unpaired host worked: $out2"; fi
[[ $out2 == *'standby "host9" is not a paired remote'* ]] || mh_fail "unpaired standby: $out2"
[[ $(info host1 ct1 | jq -r '.replication // "none"') == none ]] || mh_fail "a refused protect left a replication"
mh_step "refused: \"$out\"; \"$out2\""

# --- protected: memory sets every 2 s
mh_ctl host1 protect ct1 --standby host2 --interval 2s || mh_fail "protect ct1"
# (4 sets, sampled between two: "syncing" while a set is on the wire)
for _ in $(seq 1 300); do
  r=$(repl host1 ct1)
  (($(jq -r '.syncs // 0' <<<"$r") >= 4)) && [[ $(jq -r .state <<<"$r") == ok ]] && break
  sleep 0.5
done
(($(jq -r .syncs <<<"$r") >= 4)) || mh_fail "fewer than 4 sets reached host2 in 150 s: $r"
[[ $(jq -r '.standby + " " + .mode + " " + (.interval_ms|tostring) + " " + .state' <<<"$r") == "host2 memory 2000 ok" ]] ||
  mh_fail "replication fields: $r"
# Incremental: the chain grew (sets after the first carry only dirtied pages, the parent's by link).
(($(jq -r .chain <<<"$r") >= 2)) || mh_fail "no incremental set (chain $(jq -r .chain <<<"$r")): $r"
mh_ctl host1 info ct1 | grep '^replication:' || mh_fail "no replication line in info"
mh_ctl host2 replica list
rl=$(mh_ctl host2 replica list --json)
[[ $(jq -r '.[0].name + " " + .[0].source_host + " " + .[0].mode + " " + (.[0].memory|tostring)' <<<"$rl") == "ct1 host1 memory true" ]] ||
  mh_fail "host2's replica list: $rl"
mh_step "ct1 replicated to host2: $r"

# --- the cost: pause and bytes per set of this idle container, over 6 sets
pauses="" sizes="" last=$(jq -r .syncs <<<"$r")
while (($(wc -w <<<"$pauses") < 6)); do
  r=$(repl host1 ct1)
  s=$(jq -r .syncs <<<"$r")
  if ((s > last)); then
    pauses+="$(jq -r .last_pause_ms <<<"$r") "
    sizes+="$(jq -r .last_bytes <<<"$r") "
    last=$s
  fi
  sleep 0.5
done
mh_step "idle container, 2 s interval: pause per set (ms): $pauses; bytes per set: $sizes"
# Each round's CRIU worker was started ahead, right after the round before (last_round_ms.ahead_ready:
# how long its readiness was waited for).
ahead=$(jq -r '.last_round_ms.ahead_ready // "none"' <<<"$r")
[[ $ahead =~ ^[0-9]+$ ]] || mh_fail "the last round's worker was not started ahead: $(jq -c .last_round_ms <<<"$r")"

# --- a checkpoint between rounds: the worker started ahead holds the monitor's one checkpoint
# slot until its round; the checkpoint takes the slot over, and the rounds go on after it.
ck=$(mh_ctl host1 checkpoint ct1 mid-protect 2>&1) || mh_fail "checkpoint of the protected ct1 between rounds: $ck"
s1=$(repl host1 ct1 | jq -r .syncs)
for _ in $(seq 1 240); do
  (($(repl host1 ct1 | jq -r .syncs) >= s1 + 2)) && break
  sleep 0.5
done
r=$(repl host1 ct1)
(($(jq -r .syncs <<<"$r") >= s1 + 2)) || mh_fail "no rounds after a checkpoint: $r"
[[ $(jq -r '.last_round_ms.ahead_ready // "none"' <<<"$r") =~ ^[0-9]+$ ]] ||
  mh_fail "no worker started ahead after the checkpoint: $(jq -c .last_round_ms <<<"$r")"
mh_step "checkpoint between rounds: $ck; rounds go on ($(jq -r .syncs <<<"$r") syncs), the worker ahead waited for $(jq -r .last_round_ms.ahead_ready <<<"$r") ms"

# --- host1 dies; a set taken after we read the counter has reached host2 first
c0=$(count host1)
s0=$(repl host1 ct1 | jq -r .syncs)
for _ in $(seq 1 120); do
  (($(repl host1 ct1 | jq -r .syncs) > s0)) && break
  sleep 0.2
done
(($(repl host1 ct1 | jq -r .syncs) > s0)) || mh_fail "no set after $s0"
k=$(count host1)
mh_kill_host host1 || mh_fail "killing host1"
t0=$(date +%s%N)
act=$(mh_ctl host2 replica activate ct1 --json) || mh_fail "replica activate on host2: $act"
t1=$(date +%s%N)
echo "$act"
[[ $(jq -r .how <<<"$act") == restored ]] || mh_fail "ct1 was not restored from memory: $act"
ct=$(info host2 ct1)
[[ $(jq -r .state <<<"$ct") == running ]] || mh_fail "ct1 on host2: $ct"
[[ $(jq -r '.nics[0].ipv4' <<<"$ct") == "$ip4"/* && $(jq -r '.nics[0].ipv6' <<<"$ct") == "$ip6"/* ]] ||
  mh_fail "ct1's addresses on host2: $(jq -c .nics <<<"$ct")"
[[ $(jq -c '[.limits.memory, .limits.pids]' <<<"$ct") == '[67108864,100]' ]] || mh_fail "ct1's limits on host2: $(jq -c .limits <<<"$ct")"
# Unprivileged: restored in its own range (CRIU's images carry it), init that range's root.
if [[ -n ${MH_REPLICATE_RANGE:-} ]]; then
  [[ $(jq -r '.idmap.uid' <<<"$ct") == "$MH_REPLICATE_RANGE" ]] || mh_fail "ct1's range on host2: $(jq -c .idmap <<<"$ct")"
  [[ $(mh_on host2 stat -c %u "/proc/$(jq -r .pid <<<"$ct")") == "$MH_REPLICATE_RANGE" ]] || mh_fail "ct1's init on host2 is not uid $MH_REPLICATE_RANGE"
fi
after=$(count host2)
[[ $(draw host2) == "$r1" ]] || mh_fail "ct1's shell on host2 drew $(draw host2), on host1 $r1: it was booted, not restored"
((after >= c0)) || mh_fail "ct1's counter on host2 is $after, below $c0 (read before the last set)"
sleep 3
later=$(count host2)
((later > after)) || mh_fail "ct1's counter on host2 stopped at $after"
# The replicated value R: the last line of /hist written in host1's network namespace (each line
# names the one its shell ran in; the restored shell runs in a new one on host2); the loss is what
# host1 counted beyond it before it died.
rv=$(mh_ctl host2 exec ct1 -- cat /hist | awk 'NR == 1 { n = $2 } $2 == n { last = $1 } END { print last }')
[[ -n $rv ]] || mh_fail "no history in ct1's /hist on host2"
[[ $(mh_ctl host2 exec ct1 -- tail -1 /hist | awk '{print $2}') != "$(mh_ctl host2 exec ct1 -- head -1 /hist | awk '{print $2}')" ]] ||
  mh_fail "ct1's shell on host2 still writes host1's network namespace: $(mh_ctl host2 exec ct1 -- tail -3 /hist)"
((rv >= c0)) || mh_fail "the replicated value $rv is below $c0, read before the last set"
mh_client $bb ping -c 1 -W 5 "$ip4" >/dev/null || mh_fail "the client cannot ping ct1 at $ip4 on host2"
mh_client $bb ping -c 1 -W 5 "$ip6" >/dev/null || mh_fail "the client cannot ping ct1 at $ip6 on host2"
[[ $(mh_ctl host2 replica list --json) == "[]" ]] || mh_fail "host2 keeps the replica after activating it"
[[ ! -e $MH_BASE/host2/root/replicas/ct1 ]] || mh_fail "host2 keeps replicas/ct1"
mh_step "host1 killed at count $k; ct1 restored on host2 in $(((t1 - t0) / 1000000)) ms: same shell ($r1), resumed from the replicated value $rv (>= $c0 read before the last set; host1 had reached $k: $((k - rv)) counts lost), $after when read, then $later; the client pings $ip4 and $ip6"

mh_scenario_end
echo "vm-replicate: OK ($(($(date +%s) - MH_T0)) s)"
