#!/usr/bin/env bash
# Rootless containers on the systemd driver (issue 15, "systemdUser"): an ordinary user runs
# `bulkhead --systemd-cgroup`, and the container's scope is made by that user's own systemd manager
# (user@UID.service), as rootless podman on a systemd host asks (its default cgroup manager). Runs
# inside `tests/vm/run-in-vm.sh --systemd` (run-vm-systemd-cgroup.sh), last: it starts the system
# D-Bus and logind, which user@.service needs.
#   the default path user.slice:bulkhead:ID: the scope below user@UID.service with Delegate=yes,
#   MemoryMax/TasksMax as unit properties and files, init in it, recorded as "systemd-user";
#   update through the user's manager; delete --force leaves no unit, cgroup or state; without a
#   reachable user manager a clear error and nothing left; the same from uid 0 of a user namespace
#   of the user's own with no user namespace in the config (how rootless podman runs its runtime).
# Usage: vm-rootless-systemd.sh BULKHEAD_BINARY
set -euo pipefail
bh_bin=$1
t0=$(date +%s%N)
step() { echo "== $* ($((($(date +%s%N) - t0) / 1000000)) ms)"; }
fail() {
  echo "FAIL: $*" >&2
  journalctl -b --no-pager -n 30 >&2 || true
  exit 1
}
expect_eq() { # WHAT GOT WANT
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
  echo "ok: $1 = $2"
}
user=bhsdu
made_user=0
if ! id "$user" >/dev/null 2>&1; then
  useradd -m -s /bin/sh "$user"
  made_user=1
fi
uid=$(id -u "$user") gid=$(id -g "$user")
work=
cleanup() {
  systemctl stop "user@$uid.service" 2>/dev/null || true
  [[ -z $work ]] || rm -rf "$work"
  ((made_user == 0)) || userdel -r "$user" 2>/dev/null || true
}
trap cleanup EXIT
as_user() {
  setpriv --reuid "$uid" --regid "$gid" --init-groups env -i PATH="$PATH" HOME="/home/$user" USER="$user" \
    XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
uprop() { as_user systemctl --user show -P "$2" "$1"; }

step "the user's systemd manager: system D-Bus, logind, user@$uid.service"
systemctl start dbus.service systemd-logind.service
systemctl start "user@$uid.service" || fail "user@$uid.service did not start"
expect_eq "user@$uid.service" "$(systemctl is-active "user@$uid.service")" active
# Made only now: starting dbus.service pulls in basic.target and with it tmp.mount, a fresh
# tmpfs over /tmp that would hide anything made there before.
work=$(mktemp -d /tmp/bh-sdu.XXXXXX)

# The staged binary sits in a 0700 directory of root's: the user runs a copy.
cp "$bh_bin" "$work/bulkhead"
bh_bin=$work/bulkhead
mkdir -p "$work/bundle/rootfs/"{bin,proc,sys,dev,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in sh sleep true; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
chmod 755 "$work"
chown -R "$uid:$gid" "$work/bundle"
(cd "$work/bundle" && as_user "$bh_bin" spec --rootless)
jq '.process.terminal = false | .process.args = ["sleep", "100000"]
    | .linux.resources = {memory: {limit: 67108864}, pids: {limit: 40}}' "$work/bundle/config.json" >"$work/c.json"
chown "$uid:$gid" "$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"
expect_eq "features systemdUser" "$("$bh_bin" features | jq .linux.cgroup.systemdUser)" true

step "no user manager reachable: a clear error, nothing left"
if out=$(setpriv --reuid "$uid" --regid "$gid" --init-groups env -i PATH="$PATH" XDG_RUNTIME_DIR="$work/none" \
  "$bh_bin" --systemd-cgroup create -b "$work/bundle" u0 2>&1); then fail "create without a user manager succeeded"; fi
echo "refused: $out"
[[ $out == *"user manager"* ]] || fail "the error does not say what is missing: $out"
[[ -z $(ls -A "$work/none/bulkhead" 2>/dev/null) ]] || fail "state left: $(ls "$work/none/bulkhead")"

step "run -d u1 as $user with --systemd-cgroup (default path user.slice:bulkhead:u1)"
as_user "$bh_bin" --systemd-cgroup run -d -b "$work/bundle" u1 </dev/null >/dev/null 2>&1 ||
  fail "rootless run: $(as_user "$bh_bin" --systemd-cgroup run -d -b "$work/bundle" u1x 2>&1 </dev/null)"
unit=bulkhead-u1.scope
as_user systemctl --user show --no-pager -p Id -p ActiveState -p Slice -p ControlGroup -p Delegate \
  -p MemoryMax -p TasksMax "$unit"
expect_eq "ActiveState" "$(uprop $unit ActiveState)" active
expect_eq "Slice" "$(uprop $unit Slice)" user.slice
expect_eq "Delegate" "$(uprop $unit Delegate)" yes
expect_eq "MemoryMax" "$(uprop $unit MemoryMax)" 67108864
cg=/sys/fs/cgroup$(uprop $unit ControlGroup)
expect_eq "the scope's cgroup" "$cg" "/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/user.slice/$unit"
expect_eq "memory.max" "$(cat "$cg/memory.max")" 67108864
expect_eq "pids.max" "$(cat "$cg/pids.max")" 40
pid=$(as_user "$bh_bin" state u1 | jq .pid)
expect_eq "init in the scope" "$(grep -c "^$pid\$" "$cg/cgroup.procs")" 1
expect_eq "init's owner on the host" "$(stat -c %u "/proc/$pid")" "$uid"
expect_eq "recorded driver" "$(jq -r .cgroup_driver "/run/user/$uid/bulkhead/u1/state.json")" systemd-user

step "update u1 --memory 128M through the user's manager"
as_user "$bh_bin" update --memory 134217728 u1
expect_eq "MemoryMax after update" "$(uprop $unit MemoryMax)" 134217728
expect_eq "memory.max after update" "$(cat "$cg/memory.max")" 134217728

step "delete --force u1"
as_user "$bh_bin" delete --force u1
expect_eq "LoadState after delete" "$(uprop $unit LoadState)" not-found
[[ ! -e $cg ]] || fail "$cg left after delete"
[[ -z $(ls -A "/run/user/$uid/bulkhead" 2>/dev/null) ]] || fail "state left: $(ls "/run/user/$uid/bulkhead")"
step "u2 from uid 0 of a user namespace of the user's own (how rootless podman runs its runtime)"
# podman's config has no user namespace of its own: the container shares podman's.
cp -a "$work/bundle" "$work/bundle2"
jq '.linux.namespaces |= map(select(.type != "user")) | del(.linux.uidMappings) | del(.linux.gidMappings)' \
  "$work/bundle/config.json" >"$work/bundle2/config.json"
chown -R "$uid:$gid" "$work/bundle2"
in_userns() { as_user unshare --user --map-root-user "$@"; }
in_userns "$bh_bin" --systemd-cgroup run -d -b "$work/bundle2" u2 </dev/null >/dev/null 2>&1 ||
  fail "run in the user's namespace: $(in_userns "$bh_bin" --systemd-cgroup run -d -b "$work/bundle2" u2x 2>&1 </dev/null)"
unit2=bulkhead-u2.scope
expect_eq "ActiveState of u2" "$(uprop $unit2 ActiveState)" active
cg2=/sys/fs/cgroup$(uprop $unit2 ControlGroup)
expect_eq "u2's cgroup" "$cg2" "/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/user.slice/$unit2"
pid2=$(in_userns "$bh_bin" state u2 | jq .pid)
expect_eq "u2's init in the scope" "$(grep -c "^$pid2\$" "$cg2/cgroup.procs")" 1
expect_eq "u2's memory.max" "$(cat "$cg2/memory.max")" 67108864
in_userns "$bh_bin" delete --force u2
expect_eq "LoadState of u2 after delete" "$(uprop $unit2 LoadState)" not-found
[[ -z $(ls -A "/run/user/$uid/bulkhead" 2>/dev/null) ]] || fail "state left: $(ls "/run/user/$uid/bulkhead")"

step "done"
echo "PASS: rootless containers on the user's systemd manager"
