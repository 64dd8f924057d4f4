#!/usr/bin/env bash
# Rootless podman (Debian's package, with conmon) driving bulkhead as an ordinary user:
#   podman --runtime $BULKHEAD ...   run by a user with a subordinate id range, no root anywhere
# podman makes its own user namespace (newuidmap/newgidmap from the uidmap package map the user's
# /etc/subuid range) and runs conmon and the runtime in it, passing no --root: the runtime must use
# $XDG_RUNTIME_DIR/bulkhead, bind the device nodes it cannot mknod, and run without a cgroup where
# none is delegated to the user. Run as root (it makes the user); the VM or the host will do:
#   BULKHEAD=/path/to/bulkhead IMAGE_TAR=image.tar bash podman-rootless-suite.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=podman-rootless
source "$here/lib.sh"
require_tools podman conmon newuidmap newgidmap runuser
[[ $(id -u) == 0 ]] || die "run it as root: it creates the rootless user"
make_work_dir

# The user and its range: useradd allocates one (SUB_UID_MIN.. in /etc/login.defs) that no other
# entry overlaps; a pre-existing user without one gets 1200000..1265535.
USER_NAME=bhrootless
SUB_START=1200000
made_user=0
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --no-create-home --home-dir "$W/home" -s /bin/sh "$USER_NAME" || die "useradd $USER_NAME"
  made_user=1
fi
grep -q "^$USER_NAME:" /etc/subuid || usermod --add-subuids "$SUB_START-$((SUB_START + 65535))" "$USER_NAME"
grep -q "^$USER_NAME:" /etc/subgid || usermod --add-subgids "$SUB_START-$((SUB_START + 65535))" "$USER_NAME"
SUB_START=$(awk -F: -v u="$USER_NAME" '$1 == u {print $2; exit}' /etc/subuid)
USER_UID=$(id -u "$USER_NAME")

# Everything the user touches is its own: the work dir, a copy of the runtime and of the image.
chown "$USER_NAME:" "$W"
chmod 0755 "$W"
mkdir -p "$W/home" "$W/xdg" "$W/storage" "$W/run" "$W/libpod" "$W/vol"
cp "$BULKHEAD" "$W/bulkhead"
cp "$IMAGE_TAR" "$W/image.tar"
chown -R "$USER_NAME:" "$W"
chmod 0700 "$W/xdg"
RUNTIME_ROOT=$W/xdg/bulkhead # the runtime's default for a rootless caller

cleanup() {
  podman_ rm -a -f -t 0 >/dev/null 2>&1
  # The user's pause process (podman keeps its user namespace in it) and anything left.
  pkill -KILL -u "$USER_NAME" 2>/dev/null
  sleep 0.2
  remove_work_dir
  # Run on a host (not the VM's throw-away overlay): the user and its ranges go too.
  if ((made_user)); then
    userdel "$USER_NAME" 2>/dev/null
    sed -i "/^$USER_NAME:/d" /etc/subuid /etc/subgid
  fi
}
trap cleanup EXIT

# cgroupfs: no cgroup is delegated to the user, so podman and the runtime run containers without one.
write_podman_conf "$W/containers.conf" 'cgroup_manager = "cgroupfs"'
chown "$USER_NAME:" "$W/containers.conf"
as_user() {
  # From /: the caller's cwd (run-client-tests' 0700 stage) is not the user's to enter.
  cd / && runuser -u "$USER_NAME" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" USER="$USER_NAME" \
    XDG_RUNTIME_DIR="$W/xdg" CONTAINERS_CONF="$W/containers.conf" "$@"
}
podman_() {
  as_user podman --root "$W/storage" --runroot "$W/run" --tmpdir "$W/libpod" --storage-driver vfs \
    --runtime "$W/bulkhead" "$@"
}
podman_ load -q -i "$W/image.tar" >/dev/null || die "podman load $IMAGE_TAR as $USER_NAME"
log "podman $(podman --version | awk '{print $3}') rootless as $USER_NAME (uid $USER_UID, ids from $SUB_START)"

no_leaks() {
  local left
  left=$(as_user "$W/bulkhead" list -q 2>&1)
  expect_eq "containers left in the user's runtime root" "" "$left"
  expect_eq "the runtime root" "$RUNTIME_ROOT" "$(ls -d "$RUNTIME_ROOT")"
}

test_01_root_inside_is_the_user_outside() {
  local out
  out=$(podman_ run --rm $IMAGE sh -c 'id -u; cat /proc/self/uid_map')
  local lines
  mapfile -t lines <<<"$out"
  expect_eq "uid inside" 0 "${lines[0]}"
  # podman's namespace: 0 is the user, 1.. its range; the container shares it.
  expect_eq "uid 0's map" "0 $USER_UID 1" "$(awk '{print $1, $2, $3}' <<<"${lines[1]}")"
  expect_eq "uid 1's map" "1 $SUB_START 65536" "$(awk '{print $1, $2, $3}' <<<"${lines[2]}")"
  no_leaks
}

test_02_exit_status_and_missing_executable() {
  expect_status 42 podman_ run --rm $IMAGE sh -c 'exit 42'
  local out rc=0
  out=$(podman_ run --rm $IMAGE /no/such/binary 2>&1) || rc=$?
  expect_eq "exit status of a missing executable" 127 "$rc"
  expect_match "podman's error" "[Nn]o such file or directory|executable file not found" "$out"
  no_leaks
}

test_03_files_in_a_volume_belong_to_the_users_ids() {
  podman_ run --rm -v "$W/vol:/data" $IMAGE sh -c 'echo a >/data/root-file; echo b >/data/u1000; chown 1000:1000 /data/u1000'
  expect_eq "owner of a file root made" "$USER_UID" "$(stat -c %u "$W/vol/root-file")"
  expect_eq "owner of a file of uid 1000" "$((SUB_START + 999))" "$(stat -c %u "$W/vol/u1000")"
  no_leaks
}

test_04_detached_exec_stop_rm() {
  podman_ run -d --name rl-sleeper $IMAGE sleep 1000 >/dev/null
  local out pid
  out=$(podman_ exec rl-sleeper sh -c 'echo exec as $(id -u)')
  expect_eq "exec output" "exec as 0" "$out"
  pid=$(podman_ inspect -f '{{.State.Pid}}' rl-sleeper)
  # The container's init, seen from the host, is the user: never root.
  expect_eq "host uid of the container's init" "$USER_UID" "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
  expect_eq "the runtime's state of it" running "$(as_user "$W/bulkhead" state "$(podman_ inspect -f '{{.Id}}' rl-sleeper)" | jq -r .status)"
  podman_ stop -t 0 rl-sleeper >/dev/null
  podman_ rm rl-sleeper >/dev/null
  wait_for 10 bash -c "! kill -0 $pid"
  no_leaks
}

run_tests
