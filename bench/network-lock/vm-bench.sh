#!/usr/bin/env bash
# bench/network-lock inside the VM (run.sh starts it): RUNS pairs of `bulkheadctl checkpoint`
# of one running container (httpd and an echo server in it), each pair one checkpoint without a
# TCP connection and one with an idle connection from the client namespace held open. Per
# checkpoint: the daemon's `pause_ms` (freeze to thaw), CRIU's own time (dump.log's last
# timestamp), whether CRIU ran in the container's namespace (bulkhead-criu-in-tree-netns) and
# whether it locked (dump.log's "Running network-lock scripts"). One JSON line each, then medians.
# Usage: vm-bench.sh BIN_DIR MAKE_ROOTFS_SCRIPT [RUNS]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
runs=${3:-8}
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=../../tests/multihost/lib.sh
source "$here/lib.sh"
client=""
trap '[[ -n $client ]] && kill "$client" 2>/dev/null; mh_teardown || true' EXIT
t0=$(date +%s)
log() { echo "bench/network-lock: $* ($(($(date +%s) - t0)) s)" >&2; }

mh_hosts_up host1:1
mh_rootfs
mh_host_template host1
mh_host_net host1
# shellcheck disable=SC2016 # the container's shell expands them
mh_ct_create host1 ct1 1 --init /bin/sh -c 'httpd -p 8080 -h /; (while :; do nc -l -p 9000 -e cat; done) &
  trap "exit 0" USR2 TERM; while :; do sleep 3600 & wait $!; done'
ip4=$(mh_ct_ip4 1 1)
for _ in $(seq 1 60); do mh_client curl -sf -m 5 "http://$ip4:8080/bin/" >/dev/null 2>&1 && break; sleep 0.5; done
log "host1 up, ct1 at $ip4 (httpd, echo server on 9000)"
snaps=$MH_BASE/host1/root/snapshots/ct1

# connected_now: the container's namespace has a TCP connection (as the daemon looks: not
# listeners, not TIME_WAIT).
# ct1's processes in this (the VM's) pid namespace: host1 has a pid namespace of its own.
ct_pid() { head -1 "$(find /sys/fs/cgroup/host1 -path '*ct1*' -name cgroup.procs | head -1)"; }
ct_ss() { nsenter --net="/proc/$(ct_pid)/ns/net" ss "$@"; }
connected_now() {
  [[ -n $(ct_ss -Htn state established state syn-sent state fin-wait-1 state fin-wait-2 state close-wait \
    state last-ack state closing) ]]
}
# one CASE N: a checkpoint, its JSON line.
one() {
  local kind=$1 n=$2 name="$1-$2" out dir log_ms in_ns locked
  out=$(mh_ctl host1 checkpoint ct1 "$name" --json) || { jq -nc --arg k "$kind" '{case: $k, ok: false}'; return; }
  dir=$(dirname "$(find "$snaps" -path "*$name*" -name dump.log | head -1)")
  log_ms=$(awk -F'[()]' '/^\(/{t=$2} END{printf "%d", t*1000}' "$dir/dump.log")
  in_ns=false locked=false
  [[ -e $dir/bulkhead-criu-in-tree-netns ]] && in_ns=true
  grep -q "Running network-lock scripts" "$dir/dump.log" && locked=true
  jq -c --arg k "$kind" --argjson crit "$log_ms" --argjson ns $in_ns --argjson l $locked \
    '{case: $k, ok: true, pause_ms: .pause_ms, criu_ms: $crit, criu_in_ct_netns: $ns, locked: $l}' <<<"$out"
  mh_ctl host1 snapshot rm ct1 "$name" >/dev/null 2>&1 || true
}

# A first checkpoint, not counted: CRIU's and the images' first run in this VM (page cache,
# CRIU's kernel feature cache) took 1.8-2.5 s against 0.4-0.6 s after.
one warmup 0 >/dev/null
results=()
for n in $(seq 1 "$runs"); do
  for _ in $(seq 1 50); do connected_now || break; sleep 0.2; done
  connected_now && log "still connected: $(ct_ss -Htnp | tr '\n' ';')"
  results+=("$(one idle "$n")")
  echo "${results[-1]}"
  # An idle connection held open by a client in the client namespace.
  # nsenter execs python (no fork for a network namespace): $! is the client itself.
  nsenter --net=/run/netns/mh-client python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 9000), timeout=30)
s.sendall(b"hi\n"); s.recv(10)
print("connected", flush=True)
time.sleep(600)' "$ip4" >"$MH_BASE/client.out" 2>&1 &
  client=$!
  for _ in $(seq 1 100); do grep -q connected "$MH_BASE/client.out" 2>/dev/null && break; sleep 0.1; done
  results+=("$(one connected "$n")")
  echo "${results[-1]}"
  kill "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  client=""
done

printf '%s\n' "${results[@]}" >"$MH_BASE/results.jsonl"
log "done"
echo
echo "| case | checkpoints | CRIU in the container's namespace | locked | pause ms (median, min, max) | CRIU's own ms (median) |"
echo "|---|---|---|---|---|---|"
for kind in idle connected; do
  jq -rs --arg k "$kind" '
    [.[] | select(.case == $k and .ok)] as $r
    | ($r | map(.pause_ms) | sort) as $p | ($r | map(.criu_ms) | sort) as $c
    | "| \($k) | \($r | length) | \($r | map(select(.criu_in_ct_netns)) | length) | \($r | map(select(.locked)) | length) | \($p[($p | length) / 2 | floor]), \($p[0]), \($p[-1]) | \($c[($c | length) / 2 | floor]) |"' \
    "$MH_BASE/results.jsonl"
done
