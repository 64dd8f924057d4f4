#!/usr/bin/env bash
# Disk quotas of the ext4 storage backend (bulkheadd --storage ext4), inside tests/vm/run-in-vm.sh
# (loop devices and mounts belong in the VM): dd past a 64 MiB quota fails with ENOSPC inside the
# container while the host and another container are untouched; set --disk 128M while running lets
# the write go on; a limit below usage and a shrink are refused by number; an inode limit holds; a
# create that fails half-way leaves nothing; bulkheadd SIGKILL + restart keeps the quota mounted
# once and enforced; destroy leaves no loop device, mount or file. Prints each step with timings.
# Usage: vm-quota.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
bin=$1 mkrootfs=$2
# /tmp: a tmpfs in the VM (overlayfs refuses an upper directory on the VM root, itself an overlay).
work=$(mktemp -d /tmp/bhd-quota.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
fail() { echo "FAIL: $*" >&2; echo "--- daemon log" >&2; cat "$work/bulkheadd.log" >&2 || true; exit 1; }
t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
step() { echo "== $* ($(ms "$t0") ms)"; }
mib() { echo $(($1 / 1048576)); }
# Loop devices backed by an image under $work (from sysfs: no losetup needed).
our_loops() {
  local f
  for f in /sys/block/loop*/loop/backing_file; do
    [[ -e $f ]] && grep -l "^$work" "$f" 2>/dev/null | cut -d/ -f4
  done
  return 0
}
mounts_of() { awk -v p="$1" '$5 == p' /proc/self/mountinfo | wc -l; }

modprobe loop 2>/dev/null || true
modprobe ext4 2>/dev/null || true
[[ -e /dev/loop-control ]] || fail "no /dev/loop-control in the VM (loop module)"
grep -qw ext4 /proc/filesystems || fail "no ext4 in the VM's kernel"

start_daemon() {
  "$bin/bulkheadd" --root "$root" --socket "$sock" --cgroup-parent /bulkhead-quota --storage ext4 --privileged-default \
    --no-lxcfs >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}

sh "$mkrootfs" "$work/rootfs" >/dev/null
start_daemon
ctl template import busybox "$work/rootfs" >/dev/null
step "daemon up with --storage ext4, busybox template imported"

t=$(date +%s%N)
ctl create q1 --template busybox --disk 64M --start >/dev/null || fail "create q1 --disk 64M"
create_ms=$(ms "$t")
dir=$root/containers/q1
[[ $(mounts_of "$dir/disk") == 1 ]] || fail "q1's image is not mounted once at $dir/disk"
img_alloc=$(du -B1 "$dir/disk.img" | cut -f1)
info=$(ctl info q1 --json)
step "q1 created + started in $create_ms ms; image $(stat -c %s "$dir/disk.img") bytes, $img_alloc allocated on the host; usage $(jq -c .usage <<<"$info")"
ctl create q2 --template busybox --disk 64M --start >/dev/null || fail "create q2"

host_before=$(df -B1 --output=used /tmp | tail -1)
t=$(date +%s%N)
if ctl exec q1 -- dd if=/dev/zero of=/fill bs=1M count=100 2>"$work/dd.err"; then
  fail "dd of 100 MiB into a 64 MiB quota succeeded"
fi
grep -q "No space left on device" "$work/dd.err" || fail "dd failed without ENOSPC: $(cat "$work/dd.err")"
fill=$(ctl exec q1 -- stat -c %s /fill)
used=$(ctl info q1 --json | jq .usage.disk)
((used <= 64 << 20)) || fail "usage.disk $used is above 64 MiB"
host_after=$(df -B1 --output=used /tmp | tail -1)
img_alloc=$(du -B1 "$dir/disk.img" | cut -f1)
((img_alloc <= (64 << 20) + (1 << 20))) || fail "the image takes $img_alloc bytes on the host"
# What the host sees of q1's writes: its own files in the image's upper directory, nothing else.
[[ $(stat -c %s "$dir/disk/upper/fill") == "$fill" ]] || fail "the host does not see /fill in q1's upper"
((host_after - host_before <= (64 << 20) + (1 << 20))) ||
  fail "the host's /tmp grew by $((host_after - host_before)) bytes"
step "dd past 64 MiB: ENOSPC after $(mib "$fill") MiB ($(ms "$t") ms): '$(tr -d '\n' <"$work/dd.err")'; usage.disk $used; host /tmp grew $(mib $((host_after - host_before))) MiB (image allocation $img_alloc)"
ctl exec q2 -- dd if=/dev/zero of=/ok bs=1M count=16 2>/dev/null || fail "q2 cannot write after q1 filled its disk"
step "q2 unaffected: wrote 16 MiB"

if ctl set q1 --disk 20M 2>"$work/err"; then fail "set --disk 20M below usage was accepted"; fi
grep -q "below the container's current disk usage of [0-9]* bytes" "$work/err" || fail "unclear: $(cat "$work/err")"
grep -q "20971520" "$work/err" || fail "the error does not name the limit: $(cat "$work/err")"
if ctl set q2 --disk 32M 2>"$work/err2"; then fail "shrinking q2 to 32M was accepted"; fi
grep -q "cannot shrink" "$work/err2" || fail "unclear: $(cat "$work/err2")"
[[ $(ctl info q1 --json | jq .limits.disk) == $((64 << 20)) ]] || fail "a refused limit was saved"
step "refused: $(cat "$work/err") | $(cat "$work/err2")"

t=$(date +%s%N)
ctl set q1 --disk 128M >/dev/null || fail "set --disk 128M"
set_ms=$(ms "$t")
info=$(ctl info q1 --json)
[[ $(jq .limits.disk <<<"$info") == $((128 << 20)) ]] || fail "limit not saved: $(jq -c .limits <<<"$info")"
ctl exec q1 -- dd if=/dev/zero of=/fill2 bs=1M count=40 2>/dev/null || fail "the write did not go on after growing"
step "set --disk 128M while running: $set_ms ms; then 40 MiB more written; usage $(ctl info q1 --json | jq -c .usage)"

if ctl create q3 --template busybox --disk 16M --disk-inodes 4000000000 2>"$work/err3"; then
  fail "an impossible inode count was accepted"
fi
[[ ! -e $root/containers/q3 ]] || fail "a failed create left $(ls -A "$root/containers/q3")"
[[ $(our_loops | wc -l) == 2 ]] || fail "a failed create left a loop device: $(our_loops)"
[[ $(mounts_of "$root/containers/q3/disk") == 0 ]] || fail "a failed create left a mount"
step "a create whose mkfs fails leaves nothing: $(head -c 300 "$work/err3")"

ctl create q3 --template busybox --disk 64M --disk-inodes 1000 --start >/dev/null || fail "create --disk-inodes"
total=$(ctl info q3 --json | jq .usage.disk_inodes_total)
t=$(date +%s%N)
made=$(ctl exec q3 -- sh -c 'mkdir /many; i=0; while touch /many/f$i 2>/dev/null; do i=$((i+1)); done; echo $i')
err=$(ctl exec q3 -- sh -c 'touch /many/one-more 2>&1' || true)
[[ $err == *"No space left on device"* ]] || fail "touch past the inode limit: '$err'"
((total <= 1100 && made < total)) || fail "inode limit 1000: $total inodes, $made files made"
step "inode limit 1000: $made files made, then ENOSPC ($(ms "$t") ms); filesystem has $total inodes"

pid1=$(ctl info q1 --json | jq .pid)
kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
t=$(date +%s%N)
start_daemon
step "bulkheadd SIGKILLed and started again ($(ms "$t") ms)"
[[ $(ctl info q1 --json | jq .pid) == "$pid1" ]] || fail "q1 did not survive the daemon restart"
for c in q1 q2 q3; do
  [[ $(mounts_of "$root/containers/$c/disk") == 1 ]] || fail "$c: $(mounts_of "$root/containers/$c/disk") mounts after restart"
done
if ctl exec q1 -- dd if=/dev/zero of=/fill3 bs=1M count=200 2>"$work/dd.err"; then
  fail "the quota is gone after the daemon restart"
fi
grep -q "No space left on device" "$work/dd.err" || fail "no ENOSPC after restart: $(cat "$work/dd.err")"
used=$(ctl info q1 --json | jq .usage.disk)
((used <= 128 << 20)) || fail "usage.disk $used above 128 MiB"
step "after restart: each image mounted once, q1 same pid, dd still stops at ENOSPC (usage.disk $used)"

t=$(date +%s%N)
for c in q1 q2 q3; do ctl destroy "$c" --force || fail "destroy $c"; done
step "destroyed 3 containers ($(ms "$t") ms)"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
left=$(grep -c "$work/root" /proc/self/mountinfo || true)
[[ $left == 0 ]] || fail "$left mounts left under $work/root"
# Autoclear detaches the device when its last user goes: give the kernel a moment to finish.
for _ in $(seq 1 50); do [[ -z $(our_loops) ]] && break; sleep 0.1; done
[[ -z $(our_loops) ]] || fail "loop devices left: $(our_loops)"
[[ -z $(ls -A "$root/containers") ]] || fail "files left: $(ls -A "$root/containers")"
rmdir /sys/fs/cgroup/bulkhead-quota 2>/dev/null || true
step "nothing left: no loop device, mount or file"
echo "vm-quota: PASS ($(ms "$t0") ms)"
