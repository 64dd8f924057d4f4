#!/usr/bin/env bash
# bulkhead vs crun vs runc on one busybox-static bundle (issue 6). See bench/README.md.
#
#   bash bench/run.sh [--quick] [--runs N] [--density 10,100,500] [--vm] [--no-build] [--no-readme]
#
# Host: installs missing Debian packages, builds bulkhead (Release, build-bench/), then runs
# bench/bench.py as root inside a private mount namespace. --vm runs the same thing inside the
# cgroup v2 VM of tests/vm (QEMU TCG, ~20x slower: fewer runs, containers get memory and pids
# limits) and writes the result on the host. Results: bench/results/<date>-<env>[-quick].{json,md}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build="$src/build-bench"

quick=0 vm=0 in_vm=0 build_it=1 readme=1 runs="" density="" extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --runs) runs=$2; shift ;;
        --runs=*) runs=${1#*=} ;;
        --density) density=$2; shift ;;
        --density=*) density=${1#*=} ;;
        --vm) vm=1 ;;
        --in-vm) in_vm=1 ;;           # internal: we are the command inside the VM
        --no-build) build_it=0 ;;
        --no-readme) readme=0 ;;
        --no-limits) extra+=(--no-limits) ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

py=/usr/bin/python3   # Debian's, not a pyenv shim
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root" >&2; exit 1; }

env=host
[ $vm = 1 ] || [ $in_vm = 1 ] && env=vm
if [ $env = vm ]; then
    : "${runs:=$([ $quick = 1 ] && echo 20 || echo 40)}"
    : "${density:=10,50}"
    repeats=1  # each TCG round takes minutes
else
    : "${runs:=$([ $quick = 1 ] && echo 30 || echo 200)}"
    : "${density:=$([ $quick = 1 ] && echo 10,100 || echo 10,100,500)}"
    repeats=3
fi
args=(--env "$env" --runs "$runs" --density "$density" --density-repeats "$repeats" --bulkhead "$build/cli/bulkhead" "${extra[@]}")
[ $quick = 1 ] && args+=(--quick)
[ $readme = 1 ] || args+=(--readme /nonexistent)

if [ $in_vm = 0 ]; then
    # Debian packages: only what is missing, and apt-get update only when something is.
    need=()
    for p in crun runc busybox-static python3 time util-linux; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    perf stat -e instructions true >/dev/null 2>&1 || dpkg -s linux-perf >/dev/null 2>&1 || need+=(linux-perf)
    dpkg -s valgrind >/dev/null 2>&1 || need+=(valgrind)
    if [ ${#need[@]} -gt 0 ]; then
        echo "run.sh: installing ${need[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    fi
    if [ $build_it = 1 ]; then
        bash "$src/tests/install-deps.sh" >&2   # the build's own dependencies (idempotent)
        # -Wno-error=restrict: GCC 12 at -O3 reports a false -Wrestrict inside libstdc++'s
        # char_traits (rootfs/safe_path.cpp); it is a diagnostic only and does not change code.
        cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBULKHEAD_TESTS=OFF \
            -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
        if ! ninja -C "$build" bulkhead_cli >"$build/bench-build.log" 2>&1; then
            tail -40 "$build/bench-build.log" >&2
            echo "run.sh: building bulkhead failed (log: $build/bench-build.log)" >&2
            exit 1
        fi
    fi
fi
[ -x "$build/cli/bulkhead" ] || { echo "run.sh: no $build/cli/bulkhead (build first)" >&2; exit 1; }

if [ $vm = 1 ]; then
    raw=$(mktemp /tmp/bulkhead-bench-vm.XXXXXX)
    trap 'rm -f "$raw"' EXIT
    cd "$src"
    echo "run.sh: running inside the cgroup v2 VM (tests/vm/run-in-vm.sh); this takes minutes" >&2
    vm_extra=("${extra[@]}")
    [ $quick = 1 ] && vm_extra+=(--quick)
    rc=0
    "$src/tests/vm/run-in-vm.sh" --timeout 3000 --mem 3G --force-vm -- \
        bash bench/run.sh --in-vm --runs "$runs" --density "$density" "${vm_extra[@]}" >"$raw" || rc=$?
    if ! grep -q '"meta"' "$raw"; then
        echo "run.sh: the VM run produced no result (exit $rc)" >&2
        exit 1
    fi
    $py "$here/bench.py" --render "$raw" $([ $readme = 1 ] || echo --readme /nonexistent)
    exit 0
fi

if [ $in_vm = 1 ]; then
    # Inside the VM only the result JSON goes to stdout; progress goes to stderr.
    exec unshare -m --propagation private $py "$here/bench.py" "${args[@]}" --json-stdout
fi

# Host: one private mount namespace for all three runtimes (bench.py mounts a cgroup2 over
# /sys/fs/cgroup inside it when the host is the v1/v2 hybrid; nothing outside changes).
exec unshare -m --propagation private $py "$here/bench.py" "${args[@]}"
