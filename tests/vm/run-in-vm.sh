#!/usr/bin/env bash
# run-in-vm.sh - run a command inside a throw-away QEMU VM with real cgroup v2.
#
# Usage:
#   tests/vm/run-in-vm.sh [OPTIONS] [--] COMMAND [ARGS...]
#
# Options:
#   --mem SIZE        guest memory (qemu -m syntax, e.g. 2G, 1536M); default 2G
#   --timeout SECS    kill the VM after SECS seconds and exit 124; default 1800
#   --force-vm        always use the VM, even if the host has usable cgroup v2
#   --native-ok       (default) if the host already has the unified cgroup v2
#                     hierarchy at /sys/fs/cgroup (cgroup2fs, with the memory
#                     controller listed in cgroup.controllers), run COMMAND
#                     natively on the host instead (plain exec, same env/cwd)
#   -e, --env NAME[=VALUE]
#                     export NAME into the guest command's environment (VALUE
#                     defaults to the host's value of NAME); repeatable
#   --debug           show the whole serial console (kernel and init messages)
#                     on stderr, and boot without `quiet loglevel=0`
#   --systemd         boot systemd as PID 1 (the host's /lib/systemd/systemd, in
#                     the same 9p+overlay root) into a minimal target that starts
#                     only the command, as the service bulkhead-vm-cmd.service:
#                     no generators, no journald, no D-Bus daemon (root reaches
#                     PID 1 on /run/systemd/private, as systemctl does). systemd
#                     mounts cgroup2 and delegates controllers itself. Output and
#                     exit status as in the plain mode. Implies --force-vm.
#   -h, --help        show this help
#
# Why: this project's development hosts mount cgroups as a v1/v2 hybrid
# (cgroup2 only at /sys/fs/cgroup/unified, no controllers), so cgroup v2 code
# can't be tested there. The VM boots Debian's linux-image-amd64 kernel under
# TCG (never KVM), with an initramfs made from busybox-static, and:
#   * mounts the host's / read-only over virtio-9p, with a tmpfs overlay on top
#     (everything the command writes is lost when the VM stops; results have
#     to go out through stdout/stderr or the exit code),
#   * mounts /proc /sys /dev /dev/pts /dev/shm /run /tmp (fresh tmpfs: the
#     host's /tmp and /run are NOT visible in the guest),
#   * mounts cgroup2 at /sys/fs/cgroup (nsdelegate,memory_recursiveprot, like
#     systemd) and enables every available controller in the root's
#     cgroup.subtree_control,
#   * brings up lo, then runs COMMAND as root in the host's current directory
#     with PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
#     HOME=/root, LANG=C.UTF-8, TERM=dumb, stdin from /dev/null, and stdout
#     and stderr as pipes that are streamed to this script's stdout and stderr
#     (through the serial ports ttyS0 and ttyS1).
# The exit status is the command's. 124 means the timeout hit; 125 means the
# VM or this script failed (error on stderr).
#
# Whatever it needs (qemu-system-x86, linux-image-amd64, busybox-static, cpio)
# is installed with apt-get when missing. The initramfs is cached in
# $BULKHEAD_VM_CACHE (default /var/cache/bulkhead-vm), keyed by kernel
# version, the hash of this script and the hash of busybox.
# Environment overrides: BULKHEAD_VM_KVER (kernel version to boot),
# BULKHEAD_VM_CACHE (cache directory).
set -euo pipefail

PROG=run-in-vm
SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_DIR=${BULKHEAD_VM_CACHE:-/var/cache/bulkhead-vm}
# Loaded in this order by the guest's /init; built-in or missing ones are
# skipped (mounting 9p then fails loudly if something essential is absent).
# fuse: lxcfs in system-container tests (devtmpfs then has /dev/fuse).
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
         virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay fuse)
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mem=2G
timeout_s=1800
force_vm=0
debug=0
systemd=0
envs=()

usage() {
    sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$SELF"
}

err() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { err "$*"; exit 125; }

while (($#)); do
    case $1 in
        --mem) (($# >= 2)) || die "--mem needs a value"; mem=$2; shift 2 ;;
        --mem=*) mem=${1#*=}; shift ;;
        --timeout) (($# >= 2)) || die "--timeout needs a value"; timeout_s=$2; shift 2 ;;
        --timeout=*) timeout_s=${1#*=}; shift ;;
        --force-vm) force_vm=1; shift ;;
        --native-ok) force_vm=0; shift ;;
        -e|--env) (($# >= 2)) || die "$1 needs a value"; envs+=("$2"); shift 2 ;;
        --env=*) envs+=("${1#*=}"); shift ;;
        --debug) debug=1; shift ;;
        --systemd) systemd=1; force_vm=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *) break ;;
    esac
done
(($#)) || { usage >&2; die "no command given"; }
[[ $mem =~ ^[0-9]+[KMGT]?$ ]] || die "bad --mem value: $mem"
if ! [[ $timeout_s =~ ^[0-9]+$ ]] || ((timeout_s == 0)); then
    die "bad --timeout value: $timeout_s"
fi

# ---------------------------------------------------------------- native path
host_has_cgroup2() {
    [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]] &&
        grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null
}
if ((!force_vm)) && host_has_cgroup2; then
    ((debug)) && err "host has unified cgroup v2 with controllers; running natively"
    exec "$@"
fi

# ------------------------------------------------------- guest environment
# Validate and render -e/--env entries now, before any slow work.
env_lines=()
for e in "${envs[@]}"; do
    name=${e%%=*}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad --env name: $name"
    if [[ $e == *=* ]]; then
        env_lines+=("export $(printf '%q' "$e")")
    elif [[ -n ${!name+x} ]]; then
        env_lines+=("export $(printf '%q' "$name=${!name}")")
    fi
done

cwd=$(pwd -P)
case $cwd/ in
    /tmp/*|/run/*|/proc/*|/sys/*|/dev/*)
        die "the current directory $cwd is hidden by a fresh mount in the VM; run from elsewhere" ;;
esac

# ------------------------------------------------------------- dependencies
find_kver() {
    if [[ -n ${BULKHEAD_VM_KVER:-} ]]; then
        [[ -f /boot/vmlinuz-$BULKHEAD_VM_KVER && -d /lib/modules/$BULKHEAD_VM_KVER ]] &&
            printf '%s\n' "$BULKHEAD_VM_KVER"
        return 0
    fi
    local f v
    local -a found=()
    for f in /boot/vmlinuz-*-amd64; do
        [[ -f $f ]] || continue
        v=${f#/boot/vmlinuz-}
        [[ -d /lib/modules/$v ]] && found+=("$v")
    done
    ((${#found[@]})) && printf '%s\n' "${found[@]}" | sort -V | tail -n 1
    return 0
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

apt_updated=0
apt_install() {
    ((EUID == 0)) || die "need root to install: $*"
    local log
    log=$(mktemp)
    err "installing: $*"
    if ((!apt_updated)); then
        apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "apt-get update failed"; }
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1 ||
        { cat "$log" >&2; rm -f "$log"; die "apt-get install $* failed"; }
    rm -f "$log"
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
pkg_installed busybox-static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v modinfo >/dev/null || need+=(kmod)
kver=$(find_kver)
[[ -n $kver ]] || need+=(linux-image-amd64)
((${#need[@]} == 0)) || apt_install "${need[@]}"
if [[ -z $kver ]]; then
    kver=$(find_kver)
    [[ -n $kver ]] || die "no usable kernel (/boot/vmlinuz-*-amd64 with /lib/modules) found${BULKHEAD_VM_KVER:+ for $BULKHEAD_VM_KVER}"
fi
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$') || die "busybox-static ships no /bin/busybox?"

# ---------------------------------------------------------- guest scripts
# Stage 1, /init of the initramfs (busybox sh): load modules, mount the host
# root over 9p with a tmpfs overlay, prepare /run, switch_root to stage 2.
read -r -d '' GUEST_INIT <<'EOF_INIT' || true
#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
. /bulkhead/config

fail() {
    echo "BULKHEAD_VM_ERROR: $*"
    dmesg 2>/dev/null | tail -n 8 | sed 's/^/BULKHEAD_VM_ERROR:   dmesg: /'
    sleep 1
    poweroff -f
    sleep 60
}

for m in $(cat /lib/modules/order); do
    out=$(insmod "/lib/modules/$m.ko" 2>&1) || case $out in
        *"exists"*) ;;
        *) echo "BULKHEAD_VM_ERROR: insmod $m: $out" ;;
    esac
done

mkdir -p /lower /ovl /newroot
i=0
until mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144 \
        hostroot /lower 2>/tmp/9p.err; do
    i=$((i + 1))
    [ "$i" -lt 30 ] || fail "cannot mount the host root over 9p (mount tag hostroot): $(cat /tmp/9p.err)"
    sleep 0.1
done
mount -t tmpfs -o mode=0755,size=80% tmpfs /ovl || fail "tmpfs for the overlay"
mkdir -p /ovl/upper /ovl/work
mount -t overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot ||
    fail "cannot mount the overlay on top of the 9p host root"

mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "tmpfs on /run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || fail "tmpfs on /tmp"
B=/newroot/run/bulkhead-vm
mkdir -p "$B/bin"
cp /bin/busybox /bulkhead/* "$B/" || fail "cannot populate /run/bulkhead-vm"
for d in dev proc sys; do
    mount --move "/$d" "/newroot/$d" || fail "cannot move /$d into the new root"
done
exec switch_root /newroot /run/bulkhead-vm/busybox sh /run/bulkhead-vm/stage2
fail "switch_root failed"
EOF_INIT

# Stage 2, PID 1 in the new root (busybox sh from /run/bulkhead-vm): finish
# the mounts, then either (plain mode) cgroup2 and the run script below as
# PID 1, or (--systemd) a minimal unit set and exec systemd, which runs the
# run script as a service.
read -r -d '' GUEST_STAGE2 <<'EOF_STAGE2' || true
B=/run/bulkhead-vm
"$B/busybox" --install -s "$B/bin"
export PATH="$B/bin"
. "$B/config"

fail() {
    echo "BULKHEAD_VM_ERROR: $*" >/dev/console
    sleep 1
    poweroff -f
    sleep 60
}
warn() { echo "BULKHEAD_VM_ERROR: warning: $*" >/dev/console; }

if [ "${SYSTEMD:-0}" = 1 ]; then
    # systemd mounts /dev/pts, /dev/shm, cgroup2 (nsdelegate,memory_recursiveprot) and keeps /run
    # (already a tmpfs holding $B). Only the target below and what it pulls in start: no
    # generators (each is an exec over 9p under TCG), no sysinit.target, no journald, no D-Bus.
    for d in /lib/systemd/system-generators /usr/lib/systemd/system-generators \
             /lib/systemd/system-environment-generators /usr/lib/systemd/system-environment-generators; do
        [ -d "$d" ] || continue
        g=/etc/systemd/${d##*/}
        mkdir -p "$g"
        for f in "$d"/*; do [ -e "$f" ] && ln -sf /dev/null "$g/${f##*/}"; done
    done
    mkdir -p /etc/systemd/system
    cat >/etc/systemd/system/bulkhead-vm.target <<'EOF_TARGET'
[Unit]
Description=bulkhead VM: the command only
Wants=bulkhead-vm-cmd.service
AllowIsolate=yes
EOF_TARGET
    cat >/etc/systemd/system/bulkhead-vm-cmd.service <<'EOF_SERVICE'
[Unit]
Description=bulkhead VM command
DefaultDependencies=no
[Service]
Type=simple
ExecStart=/run/bulkhead-vm/busybox sh /run/bulkhead-vm/run
StandardInput=null
StandardOutput=null
StandardError=null
EOF_SERVICE
    if [ "${DEBUG:-0}" = 1 ]; then
        exec /lib/systemd/systemd --unit=bulkhead-vm.target --log-target=console --show-status=true
    fi
    exec /lib/systemd/systemd --unit=bulkhead-vm.target --log-target=kmsg --log-level=warning \
        --show-status=false
    fail "cannot exec /lib/systemd/systemd"
fi

mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts || warn "devpts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || warn "/dev/shm"
mount -t mqueue mqueue /dev/mqueue 2>/dev/null || true
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup 2>/dev/null ||
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2 on /sys/fs/cgroup"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || warn "cannot enable cgroup controller $c"
done
. "$B/run"
EOF_STAGE2

# The run script: loopback, then the command with output streamed between
# markers on ttyS0 (stdout) and raw on ttyS1 (stderr), then power off. Sourced
# by stage 2 as PID 1, or run by systemd as bulkhead-vm-cmd.service.
read -r -d '' GUEST_RUN <<'EOF_RUN' || true
B=/run/bulkhead-vm
export PATH="$B/bin"
. "$B/config"
fail() {
    echo "BULKHEAD_VM_ERROR: $*" >/dev/console
    sleep 1
    poweroff -f
    sleep 60
}
warn() { echo "BULKHEAD_VM_ERROR: warning: $*" >/dev/console; }

ip link set lo up || warn "cannot bring up lo"
hostname bulkhead-vm
# Netfilter's hooks are behind one static key per family and hook, for every namespace: the
# first table on a hook anywhere patches the kernel's text (text_poke_bp: a breakpoint on every
# CPU's path through that site), the last one gone patches it back. The multi-host beds make and
# drop namespaces with tables all the time, and twice a bench run stalled with both vCPUs at
# ip_local_deliver's key site taking that breakpoint (tests/vm/README.md, "A stalled guest").
# Empty accept chains on every inet hook of the VM's own namespace keep those keys on.
if [ -x /usr/sbin/nft ]; then
    /usr/sbin/nft -f - <<'EOF_NFT' || warn "cannot pin netfilter's hook keys"
table inet bulkhead_vm_pin {
    chain pin_prerouting { type filter hook prerouting priority 0; policy accept; }
    chain pin_input { type filter hook input priority 0; policy accept; }
    chain pin_forward { type filter hook forward priority 0; policy accept; }
    chain pin_output { type filter hook output priority 0; policy accept; }
    chain pin_postrouting { type filter hook postrouting priority 0; policy accept; }
}
EOF_NFT
fi

stty -F /dev/ttyS0 raw -echo 2>/dev/null || warn "stty ttyS0"
stty -F /dev/ttyS1 raw -echo 2>/dev/null || warn "stty ttyS1"
mkfifo "$B/out" "$B/err" || fail "mkfifo"

printf '%s\n' "BULKHEAD_VM_BEGIN_$NONCE" >/dev/ttyS0
cat "$B/out" >/dev/ttyS0 &
c_out=$!
cat "$B/err" >/dev/ttyS1 &
c_err=$!
env -i "$GUEST_BASH" --noprofile --norc "$B/cmd.sh" </dev/null >"$B/out" 2>"$B/err"
rc=$?
# The streamers end when the last writer is gone; background daemons still
# holding the pipes get 5 s before the streams are cut.
(sleep 5; kill "$c_out" "$c_err" 2>/dev/null) &
w=$!
wait "$c_out" "$c_err"
kill "$w" 2>/dev/null
# Close our own handles on the console so the close below waits for the
# UART to drain before we power off.
exec </dev/null >/dev/null 2>&1
printf '\n%s BULKHEAD_VM_EXIT=%s\n' "BULKHEAD_VM_END_$NONCE" "$rc" >/dev/ttyS0
sync
sleep 1
poweroff -f
sleep 60
EOF_RUN

# ------------------------------------------------------------------ kernel
# The bzImage decompressor (xz for Debian) takes ~3 s under TCG. If the
# kernel supports PVH boot (CONFIG_PVH=y, as Debian's does), unpack the ELF
# vmlinux once on the host, cache it, and let qemu boot that directly.
extract_vmlinux() { # VMLINUZ OUT -> 0 if OUT is now an ELF image
    local magic cmd off
    for magic in xz zstd gzip; do
        case $magic in
            xz) off='\xfd\x37\x7a\x58\x5a\x00'; cmd=(xz -dc --single-stream) ;;
            zstd) off='\x28\xb5\x2f\xfd'; cmd=(zstd -qdc) ;;
            gzip) off='\x1f\x8b\x08'; cmd=(gzip -dc) ;;
        esac
        command -v "${cmd[0]}" >/dev/null || continue
        off=$(LC_ALL=C grep -obUaP "$off" "$1" | head -n 1 | cut -d: -f1) || true
        [[ -n $off ]] || continue
        tail -c "+$((off + 1))" "$1" | "${cmd[@]}" >"$2" 2>/dev/null || true
        [[ $(head -c 4 "$2") == $'\x7fELF' ]] && return 0
    done
    return 1
}

kernel=/boot/vmlinuz-$kver
if grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
    vmlinux=$CACHE_DIR/vmlinux-$kver-$(stat -c %s-%Y "$kernel")
    if [[ ! -s $vmlinux ]]; then
        mkdir -p "$CACHE_DIR"
        tmp=$(mktemp "$CACHE_DIR/vmlinux.XXXXXX")
        if extract_vmlinux "$kernel" "$tmp"; then
            rm -f "$CACHE_DIR/vmlinux-$kver-"*
            chmod 644 "$tmp"
            mv -f "$tmp" "$vmlinux"
        else
            rm -f "$tmp"
            err "warning: cannot unpack $kernel; booting the compressed image (slower)"
        fi
    fi
    if [[ -s $vmlinux ]]; then kernel=$vmlinux; fi
fi

# ---------------------------------------------------------------- initramfs
script_hash=$(sha256sum "$SELF" | cut -c1-16)
bb_hash=$(sha256sum "$busybox" | cut -c1-8)
base_initrd=$CACHE_DIR/initramfs-$kver-$script_hash-$bb_hash.cpio.gz

find_module() { # NAME -> path of its .ko[.xz|.zst|.gz] under /lib/modules/$kver
    local alt=${1//_/-}
    find "/lib/modules/$kver" \( -name "$1.ko" -o -name "$1.ko.*" -o -name "$alt.ko" -o -name "$alt.ko.*" \) \
        -print -quit
}

build_initramfs() {
    mkdir -p "$CACHE_DIR"
    local stage m f
    stage=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
    # shellcheck disable=SC2064  # expand $stage now
    trap "rm -rf '$stage' '$stage.cpio.gz'; trap - RETURN" RETURN
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lower,ovl,newroot,bulkhead,lib/modules}
    cp "$busybox" "$stage/bin/busybox"
    : >"$stage/lib/modules/order"
    for m in "${MODULES[@]}"; do
        f=$(find_module "$m")
        if [[ -z $f ]]; then
            grep -qE "/(${m}|${m//_/-})\.ko\$" "/lib/modules/$kver/modules.builtin" 2>/dev/null ||
                err "warning: module $m not found for $kver (and not built in)"
            continue
        fi
        case $f in
            *.ko) cp "$f" "$stage/lib/modules/$m.ko" ;;
            *.ko.xz) command -v xz >/dev/null || apt_install xz-utils
                     xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
            *.ko.zst) command -v zstd >/dev/null || apt_install zstd
                      zstd -qdc "$f" >"$stage/lib/modules/$m.ko" ;;
            *.ko.gz) gzip -dc "$f" >"$stage/lib/modules/$m.ko" ;;
            *) err "warning: don't know how to unpack $f"; continue ;;
        esac
        printf '%s\n' "$m" >>"$stage/lib/modules/order"
    done
    printf '%s\n' "$GUEST_INIT" >"$stage/init"
    printf '%s\n' "$GUEST_STAGE2" >"$stage/bulkhead/stage2"
    printf '%s\n' "$GUEST_RUN" >"$stage/bulkhead/run"
    chmod 755 "$stage/init"
    mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
    mknod -m 666 "$stage/dev/null" c 1 3 2>/dev/null || true
    (cd "$stage" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$stage.cpio.gz"
    mv -f "$stage.cpio.gz" "$base_initrd"
    # Drop stale images (other script versions) after a week.
    find "$CACHE_DIR" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -path "$base_initrd" -mtime +7 -delete 2>/dev/null || true
}
[[ -s $base_initrd ]] || build_initramfs

# ------------------------------------------------------------- per-run data
rundir=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-vm.XXXXXX")
qemu_pid=
readers=()
# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    [[ -z $qemu_pid ]] || kill "$qemu_pid" 2>/dev/null || true
    local p
    for p in "${readers[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$rundir"
}
trap cleanup EXIT
trap 'err "interrupted"; exit 130' INT
trap 'err "terminated"; exit 143' TERM

nonce=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$rundir/extra/bulkhead"
{
    printf 'NONCE=%s\n' "$nonce"
    printf 'GUEST_BASH=%q\n' "$BASH"
    printf 'SYSTEMD=%s DEBUG=%s\n' "$systemd" "$debug"
} >"$rundir/extra/bulkhead/config"
{
    printf '# generated by %s\n' "$PROG"
    printf 'export PATH=%q HOME=/root USER=root LOGNAME=root SHELL=%q LANG=C.UTF-8 TERM=dumb\n' \
        "$GUEST_PATH" "$BASH"
    ((${#env_lines[@]} == 0)) || printf '%s\n' "${env_lines[@]}"
    printf 'cd -- %q || exit 125\n' "$cwd"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$rundir/extra/bulkhead/cmd.sh"
(cd "$rundir/extra" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$rundir/extra.cpio.gz"
cat "$base_initrd" "$rundir/extra.cpio.gz" >"$rundir/initrd.img"

# -------------------------------------------------------------------- run
# Reads the console (ttyS0): prints what is between the markers to stdout
# as it comes, forwards BULKHEAD_VM_ERROR lines to stderr, keeps the rest in
# console.log and writes the command's exit status to the file $1.
filter_console() {
    local rcfile=$1 start=BULKHEAD_VM_BEGIN_$nonce end=BULKHEAD_VM_END_$nonce
    local state=0 pending=0 line
    while IFS= read -r line || [[ -n $line ]]; do
        if ((state == 1)); then
            if [[ $line == "$end BULKHEAD_VM_EXIT="* ]]; then
                line=${line#*BULKHEAD_VM_EXIT=}
                printf '%s\n' "${line%$'\r'}" >"$rcfile"
                state=2
            else
                ((pending)) && printf '\n'
                printf '%s' "$line"
                pending=1
            fi
            continue
        fi
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$rundir/console.log"
        if ((debug)); then
            printf '[console] %s\n' "$line" >&2
        elif [[ $line == *BULKHEAD_VM_ERROR:* ]]; then
            printf '%s: guest: %s\n' "$PROG" "${line#*BULKHEAD_VM_ERROR: }" >&2
        fi
        [[ $state == 0 && $line == *"$start"* ]] && state=1
    done
}

mkfifo "$rundir/console.fifo" "$rundir/stderr.fifo"
filter_console "$rundir/rc" <"$rundir/console.fifo" &
readers+=($!)
cat <"$rundir/stderr.fifo" >&2 &
readers+=($!)

# nokaslr: the guest kernel's addresses are those of /boot/System.map-KVER, so tests/vm/vm-where.sh
# can say where a guest that went silent spins (its monitor socket: info registers).
append="console=ttyS0 panic=-1 rdinit=/init nokaslr"
((debug)) || append="quiet loglevel=0 $append"
# shellcheck disable=SC2054  # the commas are qemu's
qemu=(qemu-system-x86_64 -accel tcg -machine pc -cpu max -m "$mem" -smp 2
      -nographic -nodefaults -no-user-config -no-reboot
      -monitor "unix:$rundir/monitor.sock,server=on,wait=off"
      -kernel "$kernel" -initrd "$rundir/initrd.img" -append "$append"
      -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap
      -chardev "file,id=ttys0,path=$rundir/console.fifo"
      -serial chardev:ttys0
      -chardev "file,id=ttys1,path=$rundir/stderr.fifo"
      -serial chardev:ttys1)
((debug)) && err "kernel $kver; ${qemu[*]}"

timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null &
qemu_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=

# Let the readers finish; unblock any still waiting to open a fifo (qemu
# may have died before opening it) by opening and closing it once.
for _ in $(seq 50); do
    alive=0
    for p in "${readers[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    for f in "$rundir/console.fifo" "$rundir/stderr.fifo"; do
        exec {fd}<>"$f"
        exec {fd}>&-
    done
    sleep 0.1
done
for p in "${readers[@]}"; do wait "$p" 2>/dev/null || true; done
readers=()

if ((qemu_rc == 124)); then
    err "timed out after ${timeout_s}s (VM killed)"
    exit 124
fi
if [[ -s $rundir/rc ]]; then
    rc=$(<"$rundir/rc")
    [[ $rc =~ ^[0-9]+$ ]] || die "guest reported a bad exit status: $rc"
    exit "$rc"
fi
err "the VM stopped without reporting the command's exit status (qemu exit $qemu_rc; rerun with --debug for kernel messages)"
# Show the console's tail, unless the guest already said what went wrong.
if [[ -f $rundir/console.log ]] && ! grep -q BULKHEAD_VM_ERROR "$rundir/console.log"; then
    err "console tail:"
    tail -n 40 "$rundir/console.log" >&2
fi
exit 125
