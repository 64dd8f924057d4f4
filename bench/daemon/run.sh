#!/usr/bin/env bash
# The hosting benchmark of issue 11 item 9: bulkheadd vs LXC 5 (see bench/README.md, "Hosting").
#
#   bash bench/daemon/run.sh [--host|--vm] [--quick] [--runs N] [--density 100,500] [--no-build]
#                            [--lxc-density 100] [--no-lxc] [--mem 6G] [--bin DIR_WITH_PREBUILT_BINARIES]
#
# --host (default): create-to-running, bulkhead vs LXC, on this machine (no density: the dev hosts'
#   v1/v2 hybrid has no cgroup2 memory controller to read). --vm: the same plus memory per idle
#   container at N = 100 and 500, inside the cgroup v2 VM of tests/vm (QEMU TCG, ~20x slower).
# Writes bench/results/<date>-daemon-<host|vm>[-quick].{json,md} and prints the table.
# Benchmarks are never assertions: a missed target or a failing system is recorded, not hidden.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
lxc_density= bin_dir= where=host quick=0 runs= density= build=1 nolxc=0 mem=6G in_vm=0 out=
while (($#)); do
  case $1 in
  --host) where=host ;;
  --vm) where=vm ;;
  --quick) quick=1 ;;
  --runs) runs=$2; shift ;;
  --density) density=$2; shift ;;
  --lxc-density) lxc_density=$2; shift ;;
  --no-build) build=0 ;;
  --bin) build=0; bin_dir=$2; shift ;;
  --no-lxc) nolxc=1 ;;
  --mem) mem=$2; shift ;;
  --in-vm) in_vm=1; bin=$2; out=$3; shift 2 ;; # internal: run.sh inside the VM
  -h | --help) sed -n '2,/^set -euo/{/^#/{s/^# \{0,1\}//;p}}' "$0"; exit 0 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "bench/daemon: $*" >&2; }

# ------------------------------------------------------------------------- inside the VM
if ((in_vm)); then
  # Room for 500 containers + 500 LXC ones: pids, fds, inotify, keys, ptys.
  sysctl -qw kernel.pid_max=4194304 fs.inotify.max_user_instances=65536 fs.inotify.max_user_watches=1048576 \
    kernel.keys.maxkeys=100000 kernel.pty.max=65536 fs.file-max=4194304 user.max_user_namespaces=100000 2>/dev/null || true
  ulimit -n 1048576 2>/dev/null || ulimit -n 65536 || true
  work=$(mktemp -d /tmp/bhbench.XXXXXX) # tmpfs: overlayfs refuses an upper dir on the VM's root overlay
  # LXC keeps its runtime state under /run/lxc and needs /var/lib/lxc; both are writable (tmpfs/overlay).
  args=(--bin "$bin" --work "$work" --rootfs-script "$here/make-busybox-rootfs.sh" --where vm
    --rootfs-src "$here/rootfs" --runs "$runs" --warmup 1 --density "$density" --settle 10 --parallel 4 --limits --keep --out "$out")
  ((nolxc)) && args+=(--no-lxc)
  ((quick)) && args+=(--quick)
  [[ -n $lxc_density ]] && args+=(--lxc-density "$lxc_density")
  # Time budgets for the density creates (TCG is slow): whatever N is reached is measured and recorded.
  args+=(--budget "${BHBENCH_BUDGET:-2100}" --lxc-budget "${BHBENCH_LXC_BUDGET:-900}")
  python3 "$here/bench.py" "${args[@]}"
  echo "BHBENCH_JSON_BEGIN"
  cat "$out"
  echo
  echo "BHBENCH_JSON_END"
  exit 0
fi

# ------------------------------------------------------------------------------ on the host
((EUID == 0)) || { log "run as root"; exit 1; }
need=()
command -v lxc-start >/dev/null || need+=(lxc)
[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
build_dir=$repo/build-bench-daemon
if ((build)); then
  log "building bulkheadd, bulkheadctl, bulkhead-monitor (Release) in $build_dir"
  cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  ninja -C "$build_dir" bulkheadd bulkheadctl bulkhead_monitor >/dev/null
fi
bin_dir=${bin_dir:-$build_dir/cli}
for b in bulkheadd bulkheadctl bulkhead-monitor; do
  [[ -x $bin_dir/$b ]] || { log "$bin_dir/$b missing (drop --no-build)"; exit 1; }
done
date=$(date +%Y-%m-%d)
suffix=$where; ((quick)) && suffix+=-quick || true
res=$repo/bench/results/$date-daemon-$suffix
mkdir -p "$repo/bench/results"
# Stage binaries and scripts under /var/tmp (the VM sees the host's / but mounts its own /tmp and /run).
stage=$(mktemp -d /var/tmp/bhbench-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/bulkheadd" "$bin_dir/bulkheadctl" "$bin_dir/bulkhead-monitor" "$stage/"
cp "$here/bench.py" "$here/run.sh" "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/"
sh "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/rootfs" >/dev/null

if [[ $where == host ]]; then
  runs=${runs:-$( ((quick)) && echo 15 || echo 50)}
  density=${density:-}
  args=(--bin "$stage" --work "$stage/mnt/w" --rootfs-script "$stage/make-busybox-rootfs.sh" --where host
    --runs "$runs" --warmup 2 --density "$density" --settle 3 --out "$stage/out.json")
  ((nolxc)) && args+=(--no-lxc)
  ((quick)) && args+=(--quick)
  mkdir -p "$stage/mnt"
  # A private mount namespace with a tmpfs for the daemon's root and LXC's containers (overlay upper
  # dirs; /var/tmp here is ext4 with discard). Nothing is mounted in the host's namespace.
  log "host: $runs create-to-running runs each (bulkhead, LXC interleaved)"
  unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=0755 bhbench "$0/mnt" && exec python3 "$@"' \
    "$stage" "$stage/bench.py" "${args[@]}"
  cp "$stage/out.json" "$res.json"
else
  runs=${runs:-$( ((quick)) && echo 5 || echo 20)}
  density=${density:-$( ((quick)) && echo 20,50 || echo 100,500)}
  tmo=$( ((quick)) && echo 1800 || echo 5400)
  log "VM (--mem $mem, timeout ${tmo}s): $runs create-to-running runs each, density $density"
  cd "$stage"
  "$repo/tests/vm/run-in-vm.sh" --timeout "$tmo" --mem "$mem" -e BHBENCH_BUDGET -e BHBENCH_LXC_BUDGET -- \
    bash "$stage/run.sh" --in-vm "$stage" /tmp/bhbench-out.json --runs "$runs" --density "$density" \
    ${lxc_density:+--lxc-density "$lxc_density"} $( ((quick)) && echo --quick) $( ((nolxc)) && echo --no-lxc) >"$stage/vm.out" || log "the VM run exited $?"
  sed -n '/^BHBENCH_JSON_BEGIN$/,/^BHBENCH_JSON_END$/p' "$stage/vm.out" | sed '1d;$d' >"$res.json"
  [[ -s $res.json ]] || { log "no result came back from the VM; its output:"; cat "$stage/vm.out" >&2; exit 1; }
fi
python3 "$here/report.py" "$res.json" "$res.md"
cat "$res.md"
log "wrote $res.json and $res.md"
