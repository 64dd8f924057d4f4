#!/usr/bin/env bash
# The Debian packages installed on a clean system (run inside tests/vm/run-in-vm.sh by
# run-vm-packaging.sh: the host's root with a throwaway tmpfs overlay, so dpkg -i changes nothing
# on the host), then used only through what they installed, by absolute path (PATH has /usr/local
# first):
#   - dpkg -i of the four .deb files; the postinst made the group bulkhead and enabled the unit (the
#     VM runs no systemd, so nothing is started);
#   - /usr/bin/bulkhead runs a busybox container and prints its output;
#   - /usr/sbin/bulkheadd with its defaults (--root /var/lib/bulkhead, socket /run/bulkhead/, the
#     monitor found in /usr/libexec/bulkhead/) serves /usr/bin/bulkheadctl: template import, create
#     --start, exec, stop, destroy; the socket is 0660 root:bulkhead;
#   - examples/agent.c built with `pkg-config --cflags --libs bulkhead` and with find_package(bulkhead)
#     from the installed -dev package, run with no BULKHEAD_BINARY (so libbulkhead spawns the
#     installed /usr/bin/bulkhead): it exits 0 only if every step worked;
#   - dpkg --purge of all four leaves none of their files and the unit no longer enabled.
# Usage: vm-packaging.sh DEB_DIR SOURCE_DIR
set -euo pipefail
debs=$1 src=$2
work=$(mktemp -d /tmp/bh-pkg.XXXXXX)
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -s $work/bulkheadd.log ]] && { echo "--- bulkheadd log" >&2; tail -n 30 "$work/bulkheadd.log" >&2; }
  exit 1
}
cleanup() { if [[ -n ${daemon:-} ]]; then kill -9 "$daemon" 2>/dev/null || true; fi; }
trap cleanup EXIT

packages=(bulkhead bulkheadd libbulkhead0 libbulkhead-dev)
step "in the VM"
for p in "${packages[@]}"; do
  ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || fail "$p is already installed: not a clean system"
done
[[ ! -e /usr/bin/bulkhead && ! -e /usr/sbin/bulkheadd ]] || fail "/usr/bin/bulkhead or /usr/sbin/bulkheadd exists before the install"
getent group bulkhead >/dev/null && fail "group bulkhead exists before the install"

# --- install
mapfile -t files < <(ls "$debs"/*.deb)
((${#files[@]} == 4)) || fail "expected 4 .deb files in $debs, found ${#files[@]}"
# man-db's trigger would rebuild the index of every man page on the host's root: minutes under TCG,
# for an overlay that is thrown away. The pages themselves are checked below.
rm -f /var/lib/man-db/auto-update
step "dpkg -i ${files[*]##*/}"
if ! dpkg -i "${files[@]}" >"$work/dpkg.log" 2>&1; then
  cat "$work/dpkg.log"
  # The VM has no network: apt-get -f can only use what is already downloaded; try it anyway.
  DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
fi
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status} ${Version}' "$p")
  [[ $status == "install ok installed "* ]] || fail "$p: $status"
done
step "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${packages[@]}")"
getent group bulkhead >/dev/null || fail "the postinst did not create the group bulkhead"
wants=/etc/systemd/system/multi-user.target.wants/bulkheadd.service
# deb-systemd-helper links to /lib/systemd/system/, which is /usr/lib/systemd/system/ (merged /usr).
[[ $(readlink -f "$wants") == /usr/lib/systemd/system/bulkheadd.service ]] ||
  fail "the postinst did not enable bulkheadd.service ($wants: $(readlink "$wants" || echo missing))"
for f in /usr/bin/bulkhead /usr/sbin/bulkheadd /usr/bin/bulkheadctl /usr/libexec/bulkhead/bulkhead-monitor \
  /usr/share/man/man8/bulkhead.8.gz /usr/share/man/man8/bulkheadd.8.gz /usr/share/man/man1/bulkheadctl.1.gz \
  /usr/share/bash-completion/completions/bulkheadctl /usr/lib/systemd/system/bulkheadd.service \
  /usr/include/bulkhead/bulkhead.h; do
  [[ -e $f ]] || fail "$f is not installed"
done
grep -qx 'ExecStart=/usr/sbin/bulkheadd --foreground' /usr/lib/systemd/system/bulkheadd.service ||
  fail "the unit does not start /usr/sbin/bulkheadd: $(grep ExecStart /usr/lib/systemd/system/bulkheadd.service)"
man -l /usr/share/man/man8/bulkhead.8.gz 2>/dev/null | grep -q 'bulkhead' || fail "man -l bulkhead.8.gz shows nothing"
step "group bulkhead, binaries, man pages, completions and unit in place"

# --- the OCI runtime
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in sh echo cat hostname; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
(cd "$bundle" && /usr/bin/bulkhead spec)
jq '.process.terminal = false | .hostname = "pkgtest"
    | .process.args = ["sh", "-c", "echo hello from $(hostname)"]' "$bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$bundle/config.json"
out=$(/usr/bin/bulkhead run --bundle "$bundle" pkg1 2>&1) || fail "bulkhead run: $out"
[[ $out == "hello from pkgtest" ]] || fail "bulkhead run printed: $out"
/usr/bin/bulkhead delete --force pkg1 >/dev/null 2>&1 || true
step "/usr/bin/bulkhead run: $out"

# --- the daemon with its installed defaults
sh "$src/tests/storage/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
# The VM's / is an overlayfs, which cannot hold an overlay's upper directory (EINVAL), and its
# tmpfs cannot be idmapped under Linux 6.1 (unprivileged containers are the default): the default
# root /var/lib/bulkhead gets an ext4 image, as a real host has it on ext4 or xfs.
mkdir -p /var/lib/bulkhead
truncate -s 1G "$work/root.img"
mkfs.ext4 -q -F "$work/root.img"
modprobe loop 2>/dev/null || true
mount -o loop "$work/root.img" /var/lib/bulkhead
chmod 711 /var/lib/bulkhead
/usr/sbin/bulkheadd >"$work/bulkheadd.log" 2>&1 &
daemon=$!
ctl() { /usr/bin/bulkheadctl "$@"; }
for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && break; sleep 0.1; done
ctl list >/dev/null 2>&1 || fail "bulkheadd (defaults) did not answer on /run/bulkhead/bulkheadd.sock"
perm=$(stat -c '%a %U:%G' /run/bulkhead/bulkheadd.sock)
[[ $perm == "660 root:bulkhead" ]] || fail "the API socket is $perm, expected 660 root:bulkhead"
step "/usr/sbin/bulkheadd serving, socket $perm"
ctl template import busybox "$work/rootfs" >/dev/null || fail "template import"
ctl create c1 --template busybox --start >/dev/null || fail "create c1 --start"
out=$(ctl exec c1 -- cat /etc/hostname 2>&1) || fail "exec c1: $out"
ids=$(ctl info c1 --json | jq -c '{privileged, idmap}')
[[ $ids == '{"privileged":false,"idmap":{"gid":1000000000,"size":65536,"uid":1000000000}}' ]] ||
  fail "c1 is not unprivileged in bulkheadd's default pool: $ids"
step "bulkheadctl create c1 --start; exec c1 -- cat /etc/hostname: $out; $ids"
monitor=$(jq -r .monitor_pid /var/lib/bulkhead/containers/c1/monitor.json 2>/dev/null || true)
exe=$(readlink "/proc/${monitor:-0}/exe" 2>/dev/null || true)
[[ $exe == /usr/libexec/bulkhead/bulkhead-monitor ]] ||
  fail "c1's monitor (pid ${monitor:-none} in monitor.json) runs '$exe', not /usr/libexec/bulkhead/bulkhead-monitor"
ctl stop c1 >/dev/null || fail "stop c1"
state=$(ctl list | awk '$1 == "c1" {print $2}')
[[ ${state,,} == stopped ]] || fail "c1 after stop: $(ctl list)"
ctl destroy c1 >/dev/null || fail "destroy c1"
step "c1 ran under its monitor $exe (pid $monitor), stopped ($state), destroyed"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=

# --- the C ABI from the -dev package
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/agent" "$src/examples/agent.c" $(pkg-config --cflags --libs bulkhead) ||
  fail "examples/agent.c does not build with pkg-config bulkhead"
lib=$(ldd "$work/agent" | awk '$1 == "libbulkhead.so.0" {print $3}')
[[ $(readlink -f "$lib") == /usr/lib/*/libbulkhead.so.0.* ]] || fail "the agent loads libbulkhead from '$lib'"
step "agent built with pkg-config bulkhead $(pkg-config --modversion bulkhead), loads $lib"
mkdir -p "$work/consumer"
cat >"$work/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(agent C)
find_package(bulkhead 0.1 REQUIRED)
add_executable(agent $src/examples/agent.c)
target_link_libraries(agent PRIVATE bulkhead::bulkhead)
CM
if ! { cmake -S "$work/consumer" -B "$work/consumer/build" && cmake --build "$work/consumer/build"; } >"$work/consumer.log" 2>&1; then
  cat "$work/consumer.log"
  fail "examples/agent.c does not build with find_package(bulkhead)"
fi
step "agent built with find_package(bulkhead)"
unset BULKHEAD_BINARY
(cd "$work" && "$work/agent") || fail "the agent failed (exit $?)"
step "the agent ran every step with the installed /usr/bin/bulkhead"

# --- removal
dpkg --purge "${packages[@]}" >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
for f in /usr/bin/bulkhead /usr/sbin/bulkheadd /usr/bin/bulkheadctl /usr/libexec/bulkhead /usr/include/bulkhead \
  /usr/lib/systemd/system/bulkheadd.service /usr/share/doc/bulkheadd; do
  [[ ! -e $f ]] || fail "$f is left after dpkg --purge"
done
ls /usr/lib/*/libbulkhead* >/dev/null 2>&1 && fail "libbulkhead is left after dpkg --purge"
[[ ! -L $wants ]] || fail "the unit is still enabled after dpkg --purge ($wants)"
step "dpkg --purge removed all four packages, their files and the unit's enablement"
echo "PASS: packages installed, runtime, daemon and the agent from the installed files, purged"
