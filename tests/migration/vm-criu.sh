#!/usr/bin/env bash
# OCI checkpoint/restore under CRIU (run inside tests/vm/run-in-vm.sh by run-vm-criu.sh, where
# Debian's CRIU 3.17 works on the guest's Debian 6.1 kernel). One busybox container keeps a counter
# in shell memory (written to /tmp/c only on SIGUSR1, with the next line read from an fd it holds
# open, so the fd's offset shows), and a listening TCP socket (busybox httpd):
#   checkpoint (container gone) -> restore (counter continues, offset kept, socket accepts),
#   --leave-running, --pre-dump + dump with --parent-path, and a failing dump (no page server)
#   that leaves it running and thawed with CRIU's error quoted.
# Usage: vm-criu.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
bin=$1 mkrootfs=$2
work=$(mktemp -d /tmp/bh-criu.XXXXXX)
root=$work/state bundle=$work/bundle
bh() { "$bin/bulkhead" --root "$root" "$@"; }
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*/dump.log "$work"/*/restore.log; do
    [[ -f $f ]] && { echo "--- $f (errors)" >&2; grep -n Error "$f" | tail -5 >&2 || true; }
  done
  exit 1
}
cleanup() { bh delete -f c1 >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

criu --version | head -1
bh features | jq -e '.checkpoint.enabled' >/dev/null || fail "features: $(bh features | jq -c .checkpoint)"
step "features: $(bh features | jq -c .checkpoint)"

sh "$mkrootfs" "$bundle/rootfs" >/dev/null
mkdir -p "$bundle/rootfs/srv"
echo hello-from-c1 >"$bundle/rootfs/srv/hello.txt"
# One line per answer of the counter: how many answers wait_count takes depends on the VM's speed.
seq -f 'line%g' 1 1000 >"$bundle/rootfs/lines"
# The counter only lives in the shell's memory; SIGUSR1 writes "<count> <next line of fd 3>".
script='exec </dev/null >/dev/null 2>&1; exec 3</lines; httpd -f -p 8080 -h /srv & i=0
trap '\''read -r l <&3; echo "$i $l" >/tmp/c.new; mv /tmp/c.new /tmp/c'\'' USR1
while :; do i=$((i+1)); usleep 50000; done'
(cd "$bundle" && "$bin/bulkhead" spec)
jq --arg s "$script" '.root.readonly = false | .process.terminal = false | .process.args = ["sh", "-c", $s]' "$bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$bundle/config.json"

# Asks the counter for its value: prints "<count> <line>".
ask() {
  rm -f "$bundle/rootfs/tmp/c"
  bh kill c1 USR1
  for _ in $(seq 1 600); do [[ -s $bundle/rootfs/tmp/c ]] && { cat "$bundle/rootfs/tmp/c"; return; }; sleep 0.1; done
  fail "the counter did not answer SIGUSR1"
}
wait_count() { # until the count reaches $1
  for _ in $(seq 1 600); do
    read -r n _ < <(ask)
    ((n >= $1)) && return
    sleep 0.2
  done
  fail "counter stuck below $1"
}
init_pid() { bh state c1 | jq -r .pid; }
fetch() { nsenter -t "$(init_pid)" -n wget -q -T 10 -O- http://127.0.0.1:8080/hello.txt; }

bh run -d --bundle "$bundle" c1 </dev/null >/dev/null 2>&1
read -r n0 l0 < <(ask)
[[ $l0 == line1 ]] || fail "first answer '$n0 $l0'"
wait_count 20
# bulkhead leaves a new network namespace's lo down; CRIU must bring it back up.
nsenter -t "$(init_pid)" -n ip link set lo up
[[ $(fetch) == hello-from-c1 ]] || fail "httpd does not answer before the checkpoint"
step "c1 runs: counter $n0 -> 20+, httpd answers"

read -r before lb < <(ask)
bh checkpoint --image-path "$work/img1" --work-path "$work/w1" c1 || fail "checkpoint"
if bh state c1 >/dev/null 2>&1; then fail "c1 still exists after checkpoint"; fi
[[ -f $work/w1/dump.log && -f $work/img1/inventory.img ]] || fail "no dump.log/inventory.img"
step "checkpointed at $before ($lb); container gone; images $(du -sh "$work/img1" | cut -f1)"

bh restore -d --image-path "$work/img1" --work-path "$work/w1" --bundle "$bundle" --pid-file "$work/pid" c1 ||
  fail "restore"
[[ $(bh state c1 | jq -r .status) == running ]] || fail "state after restore: $(bh state c1)"
[[ $(cat "$work/pid") == "$(init_pid)" ]] || fail "pid file $(cat "$work/pid") vs state $(init_pid)"
read -r after la < <(ask)
((after >= before)) || fail "counter restarted: $after after $before"
# The answer after the restore reads the line after the last one before the dump.
[[ -n $lb && ${la#line} == $((${lb#line} + 1)) ]] || fail "fd offset lost: '$lb' then '$la'"
[[ $(fetch) == hello-from-c1 ]] || fail "the listening socket does not answer after restore"
[[ $(bh exec c1 head -n 1 /lines) == line1 ]] || fail "exec into the restored container"
cg=/sys/fs/cgroup/bulkhead/c1
[[ -d $cg ]] && grep -qx "$(init_pid)" "$cg/cgroup.procs" || fail "restored init is not in $cg"
step "restored: counter $before -> $after, fd at $la, httpd answers, init $(init_pid) in $cg"
# Masked directories come back masked (CRIU binds them from the restore's own empty read-only
# tmpfs, which is detached afterwards): empty, read-only, nothing of them left on the host.
for d in /proc/acpi /sys/firmware; do
  [[ -d /proc/$(init_pid)/root$d ]] || continue
  [[ -z $(bh exec c1 ls -A "$d") ]] || fail "$d is not empty after the restore"
  if bh exec c1 mkdir "$d/x" 2>/dev/null; then fail "$d is writable after the restore"; fi
  grep -q " $d " "/proc/$(init_pid)/mountinfo" || fail "$d is no mount after the restore"
done
if grep -q criu-masked-dir /proc/self/mountinfo; then fail "the masks' source is still mounted"; fi
step "masked directories still masked after the restore"

bh checkpoint --leave-running --image-path "$work/img2" c1 || fail "checkpoint --leave-running"
[[ $(bh state c1 | jq -r .status) == running ]] || fail "--leave-running: $(bh state c1)"
read -r n1 _ < <(ask)
wait_count $((n1 + 5))
step "--leave-running: still running and counting ($n1 -> $((n1 + 5))+)"

bh checkpoint --pre-dump --image-path "$work/pre" c1 || fail "pre-dump"
[[ $(bh state c1 | jq -r .status) == running ]] || fail "running after pre-dump"
read -r before _ < <(ask)
bh checkpoint --image-path "$work/full" --parent-path ../pre c1 || fail "dump --parent-path"
[[ -L $work/full/parent ]] || fail "no parent link in the final dump"
bh restore -d --image-path "$work/full" --bundle "$bundle" c1 || fail "restore of pre-dump + dump"
read -r after _ < <(ask)
((after >= before)) || fail "after pre-dump + dump: $after after $before"
step "pre-dump + dump --parent-path: pages $(du -sh "$work/pre" | cut -f1) + $(du -sh "$work/full" | cut -f1), counter $before -> $after"

# A dump that CRIU fails midway (its page server does not exist): the container is frozen by then,
# so this also checks it comes back thawed and counting.
read -r n1 _ < <(ask)
if bh checkpoint --image-path "$work/bad" --page-server 127.0.0.1:1 c1 2>"$work/err"; then
  fail "a dump to a missing page server succeeded"
fi
# The cause first (CRIU logs it without "Error"), then where CRIU gave up.
grep -q "left running" "$work/err" && grep -q "Can't connect to server 127.0.0.1:1" "$work/err" &&
  grep -q "Error (" "$work/err" || fail "unclear error: $(cat "$work/err")"
[[ $(bh state c1 | jq -r .status) == running ]] || fail "after the failed dump: $(bh state c1)"
[[ $(cat $cg/cgroup.freeze) == 0 ]] || fail "left frozen"
wait_count $((n1 + 5))
step "failed dump: error quotes CRIU ($(grep -c 'Error (' "$work/err") lines), container running and counting"
sed 's/^/    /' "$work/err"

# Without iptables (every program it installs made unrunnable: /dev/null bound over the binaries
# its commands resolve to, the nft and the legacy one) a dump of c1's own network namespace and its
# restore work: CRIU locks the network with its in-process nftables table and skips the iptables
# rules it cannot save, and the copy of its lock table the namespace's images bring back (CRIU
# 3.17 leaves it) is removed before the tree runs: the restored httpd answers over lo, which the
# table would cut.
hidden=()
for cmd in iptables-save iptables-legacy-save iptables-restore ip6tables-save ip6tables-legacy-save ip6tables-restore; do
  real=$(readlink -f "$(command -v "$cmd")") || continue
  [[ " ${hidden[*]} " == *" $real "* ]] || { mount --bind /dev/null "$real" && hidden+=("$real"); }
done
((${#hidden[@]})) || fail "no iptables binaries to hide (tests/install-deps.sh installs iptables)"
unhide() { for h in "${hidden[@]}"; do umount "$h"; done; }
if iptables-save -V >/dev/null 2>&1; then unhide; fail "iptables-save still runs"; fi
read -r before _ < <(ask)
bh checkpoint --image-path "$work/noipt" c1 2>"$work/err" || { unhide; fail "a dump without iptables: $(cat "$work/err")"; }
grep -q "table inet CRIU-" "$work"/noipt/nftables-*.img || { unhide; fail "the images hold no CRIU lock table"; }
bh restore -d --image-path "$work/noipt" --bundle "$bundle" c1 2>"$work/err" || { unhide; fail "a restore without iptables: $(cat "$work/err")"; }
unhide
read -r after _ < <(ask)
((after >= before)) || fail "without iptables: $after after $before"
[[ $(fetch) == hello-from-c1 ]] || fail "without iptables: the restored listening socket does not answer"
if command -v nft >/dev/null && nsenter -t "$(init_pid)" -n nft list tables | grep -q "CRIU-"; then
  fail "a CRIU lock table is left: $(nsenter -t "$(init_pid)" -n nft list tables)"
fi
step "no iptables (${hidden[*]} hidden): dump and restore with the nftables lock, counter $before -> $after, httpd answers"

# --empty-ns network: the network namespace is not dumped; restore hands in a fresh one (lo down,
# as a new namespace is), and the process tree and its listening socket come back in it.
read -r before _ < <(ask)
bh checkpoint --empty-ns network --image-path "$work/empty" c1 || fail "checkpoint --empty-ns network"
bh restore -d --empty-ns network --image-path "$work/empty" --bundle "$bundle" c1 || fail "restore --empty-ns"
read -r after _ < <(ask)
((after >= before)) || fail "--empty-ns: $after after $before"
nsenter -t "$(init_pid)" -n ip -o link show lo | grep -q "state DOWN" || fail "--empty-ns: lo is not fresh"
nsenter -t "$(init_pid)" -n ip link set lo up
[[ $(fetch) == hello-from-c1 ]] || fail "--empty-ns: the listening socket does not answer"
step "--empty-ns network: fresh namespace, counter $before -> $after, httpd answers"

# Bad input that CRIU never sees.
if bh checkpoint --image-path "$work/x" --manage-cgroups-mode bogus c1 2>"$work/err"; then fail "bogus mode"; fi
grep -q "soft, full, strict or ignore" "$work/err" || fail "mode error: $(cat "$work/err")"
if bh restore -d --image-path "$work/full" --bundle "$bundle" c1 2>"$work/err"; then fail "restore over c1"; fi
grep -q "exists" "$work/err" || fail "restore over an existing id: $(cat "$work/err")"

bh delete -f c1
[[ ! -d $cg ]] || fail "cgroup $cg left after delete"
step "delete after restore: cgroup removed; all passed"
