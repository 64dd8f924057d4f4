#!/usr/bin/env bash
# The network benchmark of issue 12 item 6 (see bench/README.md, "Network benchmark").
#
#   bash bench/network/run.sh [--host|--vm] [--quick] [--runs N] [--n 100] [--rounds 2] [--no-build]
#                             [--bin DIR_WITH_PREBUILT_BINARIES] [--no-lxc] [--mem 4G]
#
# --host (default): network setup cost per container (create-to-running with one bridged NIC vs none,
#   bulkheadd vs LXC, 40 runs each, interleaved) and the throughput of a bridged veth vs loopback
#   (iperf3). Runs inside a private mount + network namespace: the bridges, veths, mounts, daemon and
#   LXC containers of the run die with it; nothing is made in the host's own namespaces (LXC's empty v1
#   cgroups are removed afterwards).
# --vm: memory of N idle containers with one bridged NIC vs N without, in the cgroup v2 VM of tests/vm.
# Writes bench/results/<date>-network-<host|vm>[-quick].{json,md} and prints the table.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
where=host quick=0 runs= n= rounds= build=1 bin_dir= nolxc=0 mem=4G in_vm=0 out=
while (($#)); do
  case $1 in
  --host) where=host ;;
  --vm) where=vm ;;
  --quick) quick=1 ;;
  --runs) runs=$2; shift ;;
  --n) n=$2; shift ;;
  --rounds) rounds=$2; shift ;;
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
log() { echo "bench/network: $*" >&2; }

# ------------------------------------------------------------------------- inside the VM
if ((in_vm)); then
  sysctl -qw kernel.pid_max=4194304 fs.inotify.max_user_instances=65536 kernel.keys.maxkeys=100000 \
    kernel.pty.max=65536 2>/dev/null || true
  ulimit -n 65536 || true
  work=$(mktemp -d /tmp/bhnetbench.XXXXXX) # tmpfs: overlayfs refuses an upper dir on the VM's root overlay
  python3 "$bin/bench.py" --daemon-bench "$bin/daemon_bench.py" --bin "$bin" --work "$work" \
    --rootfs-src "$bin/rootfs" --where vm --n "$n" --rounds "$rounds" --settle 10 --parallel 4 --limits --out "$out"
  echo "BHNETBENCH_JSON_BEGIN"
  cat "$out"
  echo
  echo "BHNETBENCH_JSON_END"
  exit 0
fi

# ------------------------------------------------------------------------------ on the host
((EUID == 0)) || { log "run as root"; exit 1; }
need=()
command -v lxc-start >/dev/null || need+=(lxc)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v ip >/dev/null || need+=(iproute2)
[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  # iperf3's package asks whether to start a system-wide server: noninteractive answers no.
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
res=$repo/bench/results/$date-network-$suffix
mkdir -p "$repo/bench/results"
# Stage binaries and scripts under /var/tmp (the VM sees the host's / but mounts its own /tmp and /run).
stage=$(mktemp -d /var/tmp/bhnetbench-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/bulkheadd" "$bin_dir/bulkheadctl" "$bin_dir/bulkhead-monitor" "$stage/"
cp "$here/bench.py" "$here/run.sh" "$stage/"
cp "$repo/bench/daemon/bench.py" "$stage/daemon_bench.py"
sh "$repo/tests/storage/make-busybox-rootfs.sh" "$stage/rootfs" >/dev/null

if [[ $where == host ]]; then
  runs=${runs:-$( ((quick)) && echo 15 || echo 40)}
  args=(--daemon-bench "$stage/daemon_bench.py" --bin "$stage" --work "$stage/mnt/w" --rootfs-src "$stage/rootfs"
    --where host --runs "$runs" --warmup 2 --out "$stage/out.json")
  ((quick)) && args+=(--iperf-secs 3 --iperf-reps 2)
  ((nolxc)) && args+=(--no-lxc)
  mkdir -p "$stage/mnt"
  log "host: $runs create-to-running runs per variant (interleaved), then iperf3"
  # A private mount namespace (tmpfs for the daemon's root and LXC's containers) and a private network
  # namespace (bridges, veths): everything the run makes there goes away with the namespaces.
  # sysfs shows the network namespace of whoever mounted it, and LXC checks its bridge under
  # /sys/class/net: a sysfs of the new namespace goes over the two net directories (the cgroup
  # hierarchies under /sys/fs/cgroup stay as they are).
  mkdir -p "$stage/sysfs"
  unshare -m -n --propagation private sh -c 'set -e
    ip link set lo up
    mount -t tmpfs -o mode=0755 bhnetbench "$0/mnt"
    mount -t sysfs sysfs "$0/sysfs"
    mount --bind "$0/sysfs/class/net" /sys/class/net
    mount --bind "$0/sysfs/devices/virtual/net" /sys/devices/virtual/net
    exec python3 "$@"' "$stage" "$stage/bench.py" "${args[@]}"
  cp "$stage/out.json" "$res.json"
else
  n=${n:-$( ((quick)) && echo 20 || echo 100)}
  rounds=${rounds:-$( ((quick)) && echo 1 || echo 2)}
  tmo=$( ((quick)) && echo 1200 || echo 3600)
  log "VM (--mem $mem, timeout ${tmo}s): $rounds round(s) of $n containers without / with a NIC"
  cd "$stage"
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --force-vm --timeout "$tmo" --mem "$mem" -- \
    bash "$stage/run.sh" --in-vm "$stage" /tmp/bhnetbench-out.json --n "$n" --rounds "$rounds" \
    >"$stage/vm.out" || rc=$?
  ((rc == 0)) || log "the VM run exited $rc"
  sed -n '/^BHNETBENCH_JSON_BEGIN$/,/^BHNETBENCH_JSON_END$/p' "$stage/vm.out" | sed '1d;$d' >"$res.json"
  [[ -s $res.json ]] || { log "no result came back from the VM; its output:"; cat "$stage/vm.out" >&2; exit 1; }
fi
python3 "$here/report.py" "$res.json" "$res.md"
cat "$res.md"
log "wrote $res.json and $res.md"
