#!/usr/bin/env bash
# podman (Debian's package, with conmon) driving bulkhead as its OCI runtime:
#   podman --runtime $BULKHEAD --cgroup-manager cgroupfs ...
# Needs real cgroup v2 (run it through tests/clients/run-client-tests.sh, which boots the VM).
#   BULKHEAD=/path/to/bulkhead IMAGE_TAR=image.tar bash podman-suite.sh
# Storage, run state and the runtime's --root live under one tmpfs that is removed at the end.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=podman
source "$here/lib.sh"
require_tools podman conmon
make_work_dir
mkdir -p "$W/storage" "$W/run" "$W/libpod"
# podman passes no --root to the runtime (its cleanup process could not repeat one): the default.
RUNTIME_ROOT=/run/bulkhead
[[ $(basename "$BULKHEAD") == runc ]] && RUNTIME_ROOT=/run/runc # CLIENT_RUNTIME=runc (lib.sh)
CGROUP_PARENT=/sys/fs/cgroup/libpod_parent # podman's cgroupfs parent for containers and conmon
cleanup() {
  podman_ rm -a -f -t 0 >/dev/null 2>&1
  remove_work_dir
}
trap cleanup EXIT

write_podman_conf "$W/containers.conf"
export CONTAINERS_CONF=$W/containers.conf
podman_() {
  podman --root "$W/storage" --runroot "$W/run" --tmpdir "$W/libpod" --storage-driver vfs \
    --runtime "$BULKHEAD" --cgroup-manager cgroupfs "$@"
}
podman_ load -q -i "$IMAGE_TAR" >/dev/null || die "podman load $IMAGE_TAR"
log "podman $(podman --version | awk '{print $3}') with conmon $(conmon --version | awk 'NR==1{print $3}')"

status_of() { podman_ inspect -f '{{.State.Status}}' "$1"; }
status_is() { [[ $(status_of "$1") == "$2" ]]; }
cgroup_of() { echo "$CGROUP_PARENT/libpod-$(podman_ inspect -f '{{.Id}}' "$1")"; }
no_leaks() { expect_no_leaks "$RUNTIME_ROOT" "/nonexistent"; [[ -z $(find "$CGROUP_PARENT" -maxdepth 1 -name 'libpod-*' 2>/dev/null) ]] || { echo "container cgroups left: $(ls "$CGROUP_PARENT")"; return 1; }; }

test_01_run_rm_echo() {
  local out
  out=$(podman_ run --rm --hostname pm $IMAGE sh -c 'echo hello from $(hostname) as pid $$')
  expect_eq "output of podman run --rm" "hello from pm as pid 1" "$out"
  no_leaks
}

test_02_failing_command_exit_code() {
  expect_status 42 podman_ run --rm $IMAGE sh -c 'exit 42'
}

test_03_missing_executable_is_127_not_found() {
  local out rc=0
  out=$(podman_ run --rm $IMAGE /no/such/binary 2>&1) || rc=$?
  expect_eq "exit status of a missing executable" 127 "$rc"
  expect_match "podman's error" "[Nn]o such file or directory|executable file not found" "$out"
  rc=0
  out=$(podman_ run --rm $IMAGE no-such-command 2>&1) || rc=$?
  expect_eq "exit status of a command not in PATH" 127 "$rc"
  expect_match "podman's error" "executable file not found in \\\$PATH" "$out"
  no_leaks
}

test_04_not_executable_is_126_permission_denied() {
  local out rc=0
  out=$(podman_ run --rm $IMAGE /etc/passwd 2>&1) || rc=$?
  expect_eq "exit status of a non-executable file" 126 "$rc"
  expect_match "podman's error" "[Pp]ermission denied" "$out"
}

test_05_detached_exec_stop_rm() {
  local out
  podman_ run -d --name d1 $IMAGE sleep 100000 >/dev/null
  expect_eq "status" running "$(status_of d1)"
  out=$(podman_ exec d1 sh -c 'echo exec in $(hostname); cat /proc/1/cmdline | tr "\0" " "')
  expect_match "exec output" "^exec in [0-9a-f]{12}" "$out"
  expect_match "exec sees init" "sleep 100000" "$out"
  expect_status 5 podman_ exec d1 sh -c 'exit 5'
  expect_status 127 podman_ exec d1 no-such-command
  podman_ stop -t 1 d1 >/dev/null # sleep as pid 1 ignores SIGTERM: podman then kills
  expect_eq "status after stop" exited "$(status_of d1)"
  podman_ rm d1 >/dev/null
  no_leaks
}

test_06_memory_and_pids_limits_take_effect() {
  local out rc=0
  out=$(podman_ run --rm --memory 64m --pids-limit 20 $IMAGE \
    sh -c 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max')
  expect_eq "memory.max and pids.max seen inside" $'67108864\n20' "$out"
  # 20 pids: an inner shell forks 40 sleeps until the limit refuses a fork (busybox sh exits when
  # a fork fails), then pid 1 reads the counts with builtins only (it could not fork either).
  out=$(podman_ run --rm --pids-limit 20 $IMAGE sh -c 'sh -c "for i in \$(seq 40); do sleep 30 & done" 2>/dev/null
    read -r cur </sys/fs/cgroup/pids.current; read -r ev </sys/fs/cgroup/pids.events; echo "$cur $ev"; kill -9 -1')
  expect_match "pids.current and pids.events under pids.max 20" "^(1[0-9]|20) max [1-9][0-9]*$" "$out"
  # 64 MiB: a 200 MiB line held by tail is OOM-killed (137 = 128 + SIGKILL).
  podman_ run --rm --memory 64m --memory-swap 64m $IMAGE sh -c 'head -c 200m /dev/zero | tail -n 1 >/dev/null' || rc=$?
  expect_eq "exit status of the OOM-killed container" 137 "$rc"
  no_leaks
}

test_07_pause_unpause() {
  podman_ run -d --name p1 $IMAGE sleep 100000 >/dev/null
  local cg
  cg=$(cgroup_of p1)
  podman_ pause p1 >/dev/null
  expect_eq "status after pause" paused "$(status_of p1)"
  expect_eq "cgroup.freeze" 1 "$(cat "$cg/cgroup.freeze")"
  expect_eq "bulkhead state" paused "$("$BULKHEAD" --root "$RUNTIME_ROOT" state "$(podman_ inspect -f '{{.Id}}' p1)" | jq -r .status)"
  podman_ unpause p1 >/dev/null
  expect_eq "status after unpause" running "$(status_of p1)"
  expect_eq "cgroup.freeze after unpause" 0 "$(cat "$cg/cgroup.freeze")"
  podman_ rm -f -t 0 p1 >/dev/null # a running container: the runtime's delete --force
  no_leaks
}

test_08_tty_run() {
  local out
  # podman -t needs a terminal of its own: script(1) gives it one, 40x100, which podman hands on
  # to the container's pty (process.consoleSize and resizes through conmon).
  out=$(script -qec "stty rows 40 cols 100; podman --root $W/storage --runroot $W/run --tmpdir $W/libpod --storage-driver vfs --runtime $BULKHEAD --cgroup-manager cgroupfs run --rm -t $IMAGE sh -c 'tty; stty size'" /dev/null | tr -d '\r\0')
  expect_match "tty output" "^/dev/pts/0" "$out"
  expect_match "window size" "40 100" "$out"
}

test_09_kill_and_rm_force_running() {
  podman_ run -d --name k1 $IMAGE sleep 100000 >/dev/null
  podman_ kill k1 >/dev/null
  wait_for 30 status_is k1 exited
  podman_ rm k1 >/dev/null
  podman_ run -d --name k2 $IMAGE sh -c 'sleep 100000 & sleep 100000' >/dev/null
  podman_ rm -f -t 0 k2 >/dev/null
  no_leaks
}

pid_of() { podman_ inspect -f '{{.State.Pid}}' "$1"; }

# podman container checkpoint runs `bulkhead checkpoint --image-path --work-path` (the container
# stops); podman container restore has conmon run `bulkhead restore --detach --image-path
# --work-path --bundle --pid-file` in place of create, with conmon's pipes for stdout/stderr.
test_10_checkpoint_restore_in_place() {
  local pid before
  podman_ run -d --name ck1 $IMAGE sh -c "$CKPT_WORKLOAD" >/dev/null
  pid=$(pid_of ck1)
  wait_for 120 ckpt_count_past "$pid" 10
  expect_eq "httpd before the checkpoint" hello-from-checkpoint "$(ckpt_http "$pid")"
  before=$(ckpt_status "$pid")
  podman_ container checkpoint ck1 >/dev/null
  expect_eq "status after checkpoint" exited "$(status_of ck1)"
  expect_eq "bulkhead containers after checkpoint" "" "$("$BULKHEAD" --root "$RUNTIME_ROOT" list -q)"
  podman_ container restore ck1 >/dev/null
  expect_eq "status after restore" running "$(status_of ck1)"
  pid=$(pid_of ck1)
  expect_eq "bulkhead state's pid" "$pid" \
    "$("$BULKHEAD" --root "$RUNTIME_ROOT" state "$(podman_ inspect -f '{{.Id}}' ck1)" | jq -r .pid)"
  ckpt_expect_continues "$pid" "$before"
  expect_eq "httpd after restore" hello-from-checkpoint "$(ckpt_http "$pid")"
  expect_eq "exec into the restored container" 1 "$(podman_ exec ck1 head -n 1 /tmp/lines)"
  expect_eq "restored init's cgroup" "0::/libpod_parent/libpod-$(podman_ inspect -f '{{.Id}}' ck1)" \
    "$(cat /proc/"$pid"/cgroup)"
  podman_ rm -f -t 0 ck1 >/dev/null
  no_leaks
}

# --export packs the images with the container's config and rootfs changes into one archive;
# --import makes a new container from it (under a new name, next to the checkpointed original).
test_11_checkpoint_export_restore_import_new_name() {
  local pid before listing
  podman_ run -d --name ck2 $IMAGE sh -c "$CKPT_WORKLOAD" >/dev/null
  pid=$(pid_of ck2)
  wait_for 120 ckpt_count_past "$pid" 10
  expect_eq "httpd before the checkpoint" hello-from-checkpoint "$(ckpt_http "$pid")"
  before=$(ckpt_status "$pid")
  # Uncompressed (podman 4.3 compresses with zstd by default): less CPU in the VM, and tar lists it.
  podman_ container checkpoint --export "$W/ck2.tar" --compress none ck2 >/dev/null
  expect_eq "status after checkpoint --export" exited "$(status_of ck2)"
  listing=$(tar -tf "$W/ck2.tar") # (not piped into grep -q: tar could die of SIGPIPE, and pipefail)
  [[ $'\n'$listing$'\n' =~ $'\n'(\./)?checkpoint/inventory\.img$'\n' ]] ||
    { echo "no checkpoint/inventory.img in the export: $(head -n 20 <<<"$listing" | tr '\n' ' ')"; return 1; }
  podman_ container restore --import "$W/ck2.tar" --name ck2b >/dev/null
  expect_eq "status of the imported container" running "$(status_of ck2b)"
  expect_eq "status of the original" exited "$(status_of ck2)"
  pid=$(pid_of ck2b)
  ckpt_expect_continues "$pid" "$before"
  expect_eq "httpd after restore --import" hello-from-checkpoint "$(ckpt_http "$pid")"
  expect_eq "exec into the imported container" 1 "$(podman_ exec ck2b head -n 1 /tmp/lines)"
  podman_ rm -f -t 0 ck2 ck2b >/dev/null
  rm -f "$W/ck2.tar"
  no_leaks
}

run_tests
