#!/usr/bin/env bash
# bench/migration, inside the cgroup v2 VM (run.sh starts it): downtime and bytes of
# `bulkheadctl migrate` (docs/migration.md) between two simulated hosts of the multi-host bed
# (tests/multihost/lib.sh). Cases: an idle container (a shell asleep), and one whose shell rewrites
# a 256 MiB file in /dev/shm (tmpfs: memory of the container) from /dev/urandom over and over;
# each moved --cold and --live, RUNS times, a fresh container every run (made on host1, moved to
# host2, destroyed there). Prints one JSON line per run and then the table of medians.
# Never an assertion: a failed run is recorded as such and the bench goes on.
# Usage: vm-bench.sh BIN_DIR MAKE_ROOTFS_SCRIPT [RUNS] ["CASE:MODE ..."]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
runs=${3:-3}
# CASE:MODE pairs to run (default all); the anchors run with any idle case.
cases=${4:-idle:cold idle:live dirty256:cold dirty256:stopcopy dirty256:live}
anchor_runs=0
[[ " $cases" == *" idle:"* ]] && anchor_runs=$runs
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=../../tests/multihost/lib.sh
source "$here/lib.sh"
trap 'mh_teardown || true' EXIT
t0=$(date +%s)
log() { echo "bench/migration: $* ($(($(date +%s) - t0)) s)" >&2; }

mh_hosts_up host1:1 host2:2
mh_pair host1 host2
mh_rootfs
cp "$MH_BIN/dirtier" "$MH_BASE/rootfs/bin/dirtier"
for h in host1 host2; do
  mh_host_template "$h"
  mh_host_net "$h"
done
log "hosts up, paired, template and network on both"

# Case (b): dirtier (tests/multihost/dirtier.c) keeps 256 MiB of anonymous memory and rewrites the next 4 MiB block
# of it every second; it leaves at the template's stop signal (USR2).
# Idle: a shell (as CRIU dumps in tests/multihost/vm-migrate.sh) asleep, leaving at the stop signal.
# shellcheck disable=SC2016 # expanded by the container's shell
idle='trap "exit 0" USR2 TERM; while :; do sleep 3600 & wait $!; done'
results=()

# The anchor of case (a): CRIU itself (the criu binary, no container, no transfer) dumping and
# restoring the same process tree (the idle shell and its sleep) on this machine: what a migration
# cannot go below. downtime_ms = dump (the tree stops) + restore (it runs again).
bare=$MH_BASE/bare
for run in $(seq 1 "$anchor_runs"); do
  rm -rf "$bare" && mkdir -p "$bare/img"
  (cd / && exec setsid /bin/busybox sh -c "$idle" </dev/null >/dev/null 2>&1) &
  pid=$!
  disown "$pid"
  sleep 1
  t1=$(date +%s%N)
  if criu dump -t "$pid" -D "$bare/img" -o dump.log 2>/dev/null &&
    criu restore -D "$bare/img" -d -o restore.log --pidfile "$bare/pid" 2>/dev/null; then
    t2=$(date +%s%N)
    bytes=$(du -sb "$bare/img" | awk '{print $1}')
    line=$(jq -nc --argjson r "$run" --argjson d $(((t2 - t1) / 1000000)) --argjson b "$bytes" \
      '{case: "idle", mode: "bare-criu", run: $r, ok: true, downtime_ms: $d, total_ms: $d, bytes: $b, iterations: 0}')
  else
    line=$(jq -nc --argjson r "$run" --arg e "$(tail -3 "$bare/img/dump.log" "$bare/img/restore.log" 2>&1)" \
      '{case: "idle", mode: "bare-criu", run: $r, ok: false, error: $e}')
  fi
  # The tree is its own session (setsid), restored as such: that kills exactly it.
  pkill -9 -s "$pid" 2>/dev/null || true
  echo "BHMIG $line"
  results+=("$line")
  log "$line"
done

# The second anchor of case (a): the same shell in a container of runc's own default bundle
# (`runc spec`: its own mount, pid, network, IPC and UTS namespaces; /dev and /dev/shm on tmpfs;
# masked paths), `runc checkpoint` then `runc restore`: what the standard runtime's CRIU dump and
# restore of that tree in a container costs here, with no transfer and no daemon.
runcb=$MH_BASE/runc-bundle
if command -v runc >/dev/null; then
  rm -rf "$runcb" && mkdir -p "$runcb" && cp -a "$MH_BASE/rootfs" "$runcb/rootfs"
  (cd "$runcb" && runc spec)
  jq --arg idle "$idle" '.process.terminal = false | .process.args = ["/bin/sh", "-c", $idle]' \
    "$runcb/config.json" >"$runcb/config.json.new" && mv "$runcb/config.json.new" "$runcb/config.json"
  for run in $(seq 1 "$anchor_runs"); do
    id=anchor$run
    rm -rf "$runcb/img"
    runc run -d -b "$runcb" "$id" </dev/null >/dev/null 2>&1
    sleep 1
    t1=$(date +%s%N)
    if runc checkpoint --image-path "$runcb/img" "$id" 2>"$runcb/err" &&
      runc restore -d --image-path "$runcb/img" -b "$runcb" "$id" </dev/null >/dev/null 2>>"$runcb/err"; then
      t2=$(date +%s%N)
      bytes=$(du -sb "$runcb/img" | awk '{print $1}')
      line=$(jq -nc --argjson r "$run" --argjson d $(((t2 - t1) / 1000000)) --argjson b "$bytes" \
        '{case: "idle", mode: "runc-checkpoint-restore", run: $r, ok: true, downtime_ms: $d, total_ms: $d, bytes: $b, iterations: 0}')
    else
      line=$(jq -nc --argjson r "$run" --arg e "$(tail -3 "$runcb/err")" \
        '{case: "idle", mode: "runc-checkpoint-restore", run: $r, ok: false, error: $e}')
    fi
    runc delete -f "$id" >/dev/null 2>&1 || true
    echo "BHMIG $line"
    results+=("$line")
    log "$line"
  done
else
  log "runc is not installed: no runc anchor"
fi

n=0
for case in idle dirty256; do
  for mode in cold stopcopy live; do
    [[ " $cases " == *" $case:$mode "* ]] || continue
    for run in $(seq 1 "$runs"); do
      n=$((n + 1))
      ct=b$n
      if [[ $case == idle ]]; then
        mh_ct_create host1 "$ct" 1 --memory 1G --init /bin/sh -c "$idle"
      else
        mh_ct_create host1 "$ct" 1 --memory 1G --init /bin/dirtier 256 4
        # Measured once the working set is written and being rewritten.
        for _ in $(seq 1 600); do
          [[ -n $(mh_ctl host1 exec "$ct" -- cat /passes 2>/dev/null) ]] && break
          sleep 1
        done
      fi
      # stopcopy: live without pre-copy rounds, all memory dumped, sent and restored in the freeze.
      flags=("--$mode")
      [[ $mode == stopcopy ]] && flags=(--live --precopy-rounds 0)
      if json=$(mh_ctl host1 migrate "$ct" host2 "${flags[@]}" --json 2>&1); then
        line=$(jq -c --arg c "$case" --arg m "$mode" --argjson r "$run" \
          '{case: $c, mode: $m, run: $r, ok: true, downtime_ms, total_ms, bytes, iterations, precopy_rounds, phases_ms,
            before_freeze_ms, criu_dump_ms, target_ms}' <<<"$json")
        mh_ctl host2 destroy "$ct" --force >/dev/null || true
      else
        line=$(jq -nc --arg c "$case" --arg m "$mode" --argjson r "$run" --arg e "$json" \
          '{case: $c, mode: $m, run: $r, ok: false, error: $e}')
        mh_ctl host1 destroy "$ct" --force >/dev/null 2>&1 || true
        mh_ctl host2 destroy "$ct" --force >/dev/null 2>&1 || true
      fi
      echo "BHMIG $line"
      results+=("$line")
      log "$line"
    done
  done
done

echo
echo "| case | mode | runs ok | median downtime_ms | median total_ms | median bytes | median iterations | all downtimes (ms) |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}" | jq -rs '
  def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  group_by(.case + " " + .mode)[] |
  (map(select(.ok))) as $ok |
  "| \(.[0].case) | \(.[0].mode) | \($ok | length)/\(length) | \($ok | map(.downtime_ms) | median) | \($ok | map(.total_ms) | median) | \($ok | map(.bytes) | median) | \($ok | map(.iterations) | median) | \($ok | map(.downtime_ms | tostring) | join(", ")) |"'
log "done"
