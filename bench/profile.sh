#!/usr/bin/env bash
# Where bulkhead's time goes: the analysis behind the findings in bench/README.md.
#
#   bash bench/profile.sh [all|strace|perf|callgrind|ab|static|cgroup-flags]   (as root, after run.sh built)
#
# Everything runs in a private mount namespace with a cgroup2 over /sys/fs/cgroup (as bench.py
# does) and state on a tmpfs. Output goes to $OUT (default /tmp/bulkhead-profile). Nothing here is
# a test; numbers move with the machine's load, so compare variants only within one invocation.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
BH=${BULKHEAD:-$src/build-bench/cli/bulkhead}
OUT=${OUT:-/tmp/bulkhead-profile}
what=${1:-all}
py=/usr/bin/python3
mkdir -p "$OUT"

# One rootfs, the bench's config and its variants.
A=$OUT/bundles
if [ ! -d "$A/rootfs" ]; then
    mkdir -p "$A/rootfs/bin" "$A"/rootfs/{proc,dev,sys,tmp,etc}
    cp /bin/busybox "$A/rootfs/bin/"
    for n in true sh sleep; do ln -s busybox "$A/rootfs/bin/$n"; done
    (cd "$A" && runc spec)
    base='.process.terminal=false | .process.args=["/bin/true"] | .root.path="'$A'/rootfs"
          | .linux.namespaces=[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]'
    mk() { mkdir -p "$A/$1"; jq "$base | $2" "$A/config.json" >"$A/$1/config.json"; }
    mk true '.'
    mk sleep '.process.args=["/bin/sleep","100000"]'
    mk nocgmount '.mounts |= map(select(.type != "cgroup"))'
    mk cgns '.linux.namespaces += [{"type":"cgroup"}]'
    mk nonet '.linux.namespaces |= map(select(.type != "network"))'
fi

# Run "$@" in a private mount ns with cgroup2 on /sys/fs/cgroup and a tmpfs at $OUT/state.
inns() {
    mkdir -p "$OUT/state"
    unshare -m --propagation private bash -c '
        [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || mount -t cgroup2 none /sys/fs/cgroup
        [ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ] || mount -t bpf -o mode=0700 bpf /sys/fs/bpf
        mount -t tmpfs none "$0/state"
        shift 0; exec "$@"' "$OUT" "$@"
}
R="--root $OUT/state/bh"

do_strace() {
    echo "== strace -f -c of one bulkhead run  -> $OUT/strace-c.txt"
    inns strace -f -c -o "$OUT/strace-c.txt" "$BH" $R run --bundle "$A/true" s1 2>/dev/null
    head -25 "$OUT/strace-c.txt"
    echo "== strace -f -tt -T  -> $OUT/strace-tt.txt (slowest 15 calls)"
    inns strace -f -tt -T -o "$OUT/strace-tt.txt" "$BH" $R run --bundle "$A/true" s2 2>/dev/null
    perl -ne 'print "$1 $_" if /<(\d+\.\d+)>$/' "$OUT/strace-tt.txt" | sort -rn | head -15 | cut -c1-170
}

do_perf() {
    echo "== perf trace -s over 30 runs (syscall wall time per process) -> $OUT/perf-trace.txt"
    inns perf trace -s -o "$OUT/perf-trace.txt" -- bash -c \
        "for i in \$(seq 1 30); do $BH $R run --bundle $A/true pt\$i 2>/dev/null; done"
    echo "== perf record -g (cpu-clock) over 50 runs -> $OUT/perf.data"
    inns perf record -q -F 20000 -e cpu-clock -g -o "$OUT/perf.data" -- bash -c \
        "for i in \$(seq 1 50); do $BH $R run --bundle $A/true pr\$i 2>/dev/null; done"
    perf report -i "$OUT/perf.data" --comm bulkhead,true --children --sort sym --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | grep -E '\[k\] (__x64_sys_|__do_sys_|bpf_check|setup_net|create_new_namespaces)' | head -15
    echo "== off-CPU stacks (sched_switch) of one run -> $OUT/sched.txt"
    inns perf record -q -e sched:sched_switch -g -o "$OUT/sched.data" -- "$BH" $R run --bundle "$A/true" sw1
    perf script -i "$OUT/sched.data" -F comm,pid,time,event,trace,ip,sym 2>/dev/null >"$OUT/sched.txt"
    grep -A8 'prev_state=D' "$OUT/sched.txt" | grep -E 'prev_state|synchronize|rcu_sync|favor|discard|umount|fput' | head -20
}

do_callgrind() {
    echo "== callgrind: user-space instructions of single invocations (create stops at clone3: valgrind has no clone3)"
    inns bash -c "
        valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.version $BH --version 2>&1 | grep Collected
        valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.create $BH $R create --bundle $A/true c1 2>&1 | grep Collected
        $BH $R create --bundle $A/sleep c2 2>/dev/null
        valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.state $BH $R state c2 2>&1 >/dev/null | grep Collected
        $BH $R delete -f c2"
    callgrind_annotate --inclusive=yes "$OUT/cg.state" 2>/dev/null | grep -E '_dl_start |main \[|add_to|value_flag|long_option|Runtime::state' | cut -c1-130
    callgrind_annotate --inclusive=yes "$OUT/cg.create" 2>/dev/null | grep -E 'parse_spec|create_container|prepare_security' | cut -c1-130
    LD_DEBUG=statistics "$BH" --version 2>&1 >/dev/null | grep -E 'startup time|final number of relocations:'
}

do_ab() {
    echo "== A/B (interleaved, wall and CPU): cgroup2 mount, cgroup namespace, network namespace"
    inns "$py" "$here/ab.py" --runs 40 --gap 0.2 \
        bh "$BH $R run --bundle $A/true {id}" \
        bh+cgroupns "$BH $R run --bundle $A/cgns {id}" \
        bh-no-cgroup-mount "$BH $R run --bundle $A/nocgmount {id}" \
        bh-no-netns "$BH $R run --bundle $A/nonet {id}" \
        crun "crun --cgroup-manager=disabled --root $OUT/state/crun run --bundle $A/true {id}" \
        crun-no-cgroup-mount "crun --cgroup-manager=disabled --root $OUT/state/crun run --bundle $A/nocgmount {id}" \
        floor-unshare "unshare --pid --fork --mount --net --ipc --uts --root=$A/rootfs /bin/true"
}

do_static() {
    echo "== static-link experiment: relink build-bench's objects (no source change) into $OUT/bin"
    mkdir -p "$OUT/bin"
    cat >"$OUT/bin/fmt_impl.cpp" <<'EOF'
#include <fmt/format-inl.h>
FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
}
FMT_END_NAMESPACE
EOF
    c++ -O2 -std=gnu++20 -c "$OUT/bin/fmt_impl.cpp" -o "$OUT/bin/fmt_impl.o"
    local b=$src/build-bench objs
    objs=$(cd "$b" && ninja -t commands bulkhead_cli | tail -1 | tr ' ' '\n' | grep -E '\.(o|a)$' | sed "s|^|$b/|")
    # shellcheck disable=SC2086
    c++ -O3 $objs -o "$OUT/bin/dynamic" /usr/lib/x86_64-linux-gnu/libfmt.so.9 -lseccomp -lcap
    # shellcheck disable=SC2086
    c++ -O3 -static-libstdc++ -static-libgcc $objs "$OUT/bin/fmt_impl.o" -o "$OUT/bin/cxx-static" \
        -Wl,-Bstatic -lseccomp -lcap -Wl,-Bdynamic
    # shellcheck disable=SC2086
    c++ -O3 -static $objs "$OUT/bin/fmt_impl.o" -o "$OUT/bin/static" -lseccomp -lcap 2>/dev/null
    ls -l "$OUT/bin/dynamic" "$OUT/bin/cxx-static" "$OUT/bin/static" | awk '{print $5, $9}'
    inns "$py" "$here/ab.py" --runs 200 \
        "dynamic --version" "$OUT/bin/dynamic --version" \
        "cxx-static --version" "$OUT/bin/cxx-static --version" \
        "static --version" "$OUT/bin/static --version" \
        "crun --version" "crun --version" \
        "busybox true (floor)" "/bin/busybox true"
    inns "$py" "$here/ab.py" --runs 100 \
        "dynamic run" "$OUT/bin/dynamic $R run --bundle $A/nocgmount {id}" \
        "static run" "$OUT/bin/static $R run --bundle $A/nocgmount {id}"
}

# Does a container's cgroup2 mount (no cgroup namespace) rewrite the host's cgroup2 root flags?
# Meaningful where the host mounted cgroup2 with options (the VM: nsdelegate,memory_recursiveprot).
do_cgroup_flags() {
    if [ "$(hostname)" != bulkhead-vm ]; then
        echo "cgroup-flags remounts /sys/fs/cgroup: run it only in the VM:" >&2
        echo "  tests/vm/run-in-vm.sh --force-vm -- bash bench/profile.sh cgroup-flags" >&2
        exit 2
    fi
    mkdir -p "$OUT/state"
    local opts
    opts() { awk '$5 == "/sys/fs/cgroup" {print $NF}' /proc/self/mountinfo | tail -1; }
    echo "before: $(opts)"
    for rt in "$BH $R" "crun --root $OUT/state/crun" "runc --root $OUT/state/runc"; do
        $rt run --bundle "$A/true" "flags$RANDOM" 2>/dev/null || true
        echo "after ${rt%% *}: $(opts)"
        mount -o remount,nsdelegate,memory_recursiveprot /sys/fs/cgroup 2>/dev/null || true
    done
    $BH $R run --bundle "$A/cgns" "flags$RANDOM" 2>/dev/null || true
    echo "after bulkhead with a cgroup namespace: $(opts)"
}

case $what in
    strace) do_strace ;;
    perf) do_perf ;;
    callgrind) do_callgrind ;;
    ab) do_ab ;;
    static) do_static ;;
    cgroup-flags) do_cgroup_flags ;;
    all) do_strace; do_perf; do_callgrind; do_ab; do_static ;;
    *) echo "profile.sh: unknown $what" >&2; exit 2 ;;
esac
