# shellcheck shell=bash
# tests/multihost/lib.sh: several simulated hosts in one machine (the cgroup v2 VM), each with its own
# bulkheadd, for scenarios between hosts (remotes, migration). Source it from a bash script that
# runs as root with `set -euo pipefail`; see tests/multihost/README.md for the functions and the
# address plan. Every host is
#   - a network namespace mh-NAME with one NIC lan0 (198.18.100.INDEX/24, fd00:100::INDEX/64) whose
#     peer is a port of the bridge "lan" in the namespace mh-lan;
#   - a pid namespace whose init (a bash loop that reaps) is the host's "power": SIGKILLing it kills
#     every process of the host (daemon, monitors, containers, in nested pid namespaces too);
#   - a mount namespace (private propagation) with its own tmpfs /run, so /run/bulkhead is its own,
#     and a UTS namespace with its host name;
#   - the cgroup subtree /NAME: the init and the daemon in /NAME/init.scope, containers under
#     --cgroup-parent /NAME;
#   - with MH_HOST_CPUS ("host1=0 host2=1"), that subtree's cpuset.cpus: the host's own CPUs, as
#     separate machines have (unset, every host shares every CPU);
#   - bulkheadd --root $MH_BASE/NAME/root --socket /run/bulkhead/bulkheadd.sock --cgroup-parent /NAME
#     --listen 198.18.100.INDEX:8443 --host-name NAME --no-lxcfs.
# A client namespace mh-client (198.18.100.100, fd00:100::100) on the same bridge is a machine
# outside every host. Nothing here touches the machine's own network namespace beyond creating the
# veths (they are moved out at creation).

MH_BIN=${MH_BIN:-}                  # directory with bulkheadd, bulkheadctl, bulkhead-monitor
MH_BASE=${MH_BASE:-/tmp/bulkhead-mh} # per-host state: $MH_BASE/NAME/{root,bulkheadd.log,...}
MH_PORT=${MH_PORT:-8443}             # every daemon's --listen port
MH_LAN4=198.18.100                   # the LAN's /24: host INDEX is .INDEX, the client .100
MH_LAN6=fd00:100:                    # the LAN's /64: host INDEX is fd00:100::INDEX
MH_CLIENT_INDEX=100
MH_NET=lan                           # the routed bulkhead network mh_host_net makes on every host
MH_NET4=198.18.100.128/25            # its subnets: the same on every host (addresses move with a
MH_NET6=fd00:100::1:0/112            # migrated container); mh_ct_ip4/mh_ct_ip6 give per-host slices
MH_DAEMON_FLAGS=${MH_DAEMON_FLAGS:-} # extra bulkheadd flags for every host (word-split)
MH_HOST_CPUS=${MH_HOST_CPUS:-}       # "NAME=CPUS ...": a host's cpuset (unset: every CPU)

mh_log() { echo "multihost: $*" >&2; }
mh_die() {
  mh_log "ERROR: $*"
  return 1
}

# A host's name: a link name in mh-lan and a cgroup name, so short and plain.
mh_check_name() {
  [[ $1 =~ ^[a-z][a-z0-9]{0,9}$ && $1 != lan && $1 != client ]] ||
    mh_die "bad host name \"$1\" (1-10 of a-z0-9, starting with a letter; not lan or client)"
}
mh_dir() { echo "$MH_BASE/$1"; }
mh_index() { cat "$MH_BASE/$1/index"; }
mh_ip4() { echo "$MH_LAN4.$(mh_index "$1")"; }
mh_ip6() { echo "${MH_LAN6}:$(mh_index "$1")"; }
mh_addr() { echo "$(mh_ip4 "$1"):$MH_PORT"; }
# The host pid of NAME's pid-namespace init (empty when the host is down).
mh_init_pid() {
  local f=$MH_BASE/$1/init.pid pid
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  [[ -d /proc/$pid && $(readlink "/proc/$pid/ns/pid" 2>/dev/null) == "$(<"$MH_BASE/$1/pidns")" ]] && echo "$pid"
  return 0
}
mh_host_alive() { [[ -n $(mh_init_pid "$1") ]]; }
# Container addresses: host INDEX gets 198.18.100.(128 + 16*(INDEX-1) + N) and fd00:100::1:INDEX0N
# (hex), N 1..15, INDEX 1..7: slices of the shared routed subnets, so containers created on
# different hosts never collide.
mh_ct_ip4() { echo "$MH_LAN4.$((128 + 16 * ($1 - 1) + $2))"; }
mh_ct_ip6() { printf 'fd00:100::1:%x\n' $(($1 * 256 + $2)); }

# mh_lan_up: the LAN (bridge "lan" in mh-lan) and the client namespace. mh_host_up calls it.
mh_lan_up() {
  [[ -n $MH_BIN && -x $MH_BIN/bulkheadd ]] || mh_die "set MH_BIN to the directory of bulkheadd (now \"$MH_BIN\")" || return
  [[ -e /run/netns/mh-lan ]] && return 0
  mkdir -p "$MH_BASE"
  # What the machine has before the first host: mh_leftovers compares with it.
  mh_state_links >"$MH_BASE/links.before"
  mh_state_mounts >"$MH_BASE/mounts.before"
  mh_state_cgroups >"$MH_BASE/cgroups.before"
  mh_state_namespaces >"$MH_BASE/namespaces.before"
  ip netns add mh-lan
  ip -n mh-lan link set lo up
  ip -n mh-lan link add lan type bridge
  ip -n mh-lan link set lan up
  ip netns add mh-client
  ip -n mh-client link set lo up
  ip link add lan0 netns mh-client type veth peer name client netns mh-lan
  ip -n mh-lan link set client master lan up
  ip -n mh-client addr add "$MH_LAN4.$MH_CLIENT_INDEX/24" dev lan0
  ip -n mh-client addr add "${MH_LAN6}:$MH_CLIENT_INDEX/64" dev lan0 nodad
  ip -n mh-client link set lan0 up
}

# The machine's state that a host must not leave behind, one item a line, sorted: links of this
# network namespace, mount points of this mount namespace, cgroups, and every namespace a process
# is in or holds an fd of (a namespace no process holds is freed by the kernel; one kept by a bind
# mount is among the mount points).
mh_state_links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
mh_state_mounts() { awk '{print $5}' /proc/self/mountinfo | sort; }
mh_state_cgroups() { find /sys/fs/cgroup -mindepth 1 -type d | sort; }
mh_state_namespaces() {
  # One find, not a readlink per process: under TCG every fork costs milliseconds.
  find /proc -mindepth 3 -maxdepth 3 \( -path '/proc/[0-9]*/ns/*' -o -path '/proc/[0-9]*/fd/*' \) \
    -type l -printf '%l\n' 2>/dev/null | grep -E '^(net|mnt|pid|uts|ipc|cgroup):\[' | sort -u || true
}

# mh_client CMD...: run CMD in the client namespace (a machine on the LAN outside every host).
mh_client() { nsenter --net=/run/netns/mh-client "$@"; }

# The host's init: pid 1 of the host's pid namespace. It joins the host's cgroup, gets its own
# /run and host name, and then only reaps (bash reaps every child, adopted orphans too).
# shellcheck disable=SC2016
MH_INIT='set -e
echo 0 >"/sys/fs/cgroup/$1/init.scope/cgroup.procs"
hostname "$1"
mount -t tmpfs -o mode=0755,nosuid,nodev "mh-$1-run" /run
mkdir -p /run/bulkhead
echo ready >"$2"
set +e
while :; do sleep 3600 & wait $!; done'

# mh_pin_cpus NAME: host NAME's cgroup subtree on the CPUs MH_HOST_CPUS gives it, if any.
mh_pin_cpus() {
  local pair cpus=""
  for pair in $MH_HOST_CPUS; do
    [[ ${pair%%=*} == "$1" ]] && cpus=${pair#*=}
  done
  [[ -n $cpus ]] || return 0
  grep -qw cpuset /sys/fs/cgroup/cgroup.subtree_control ||
    echo +cpuset >/sys/fs/cgroup/cgroup.subtree_control || mh_die "cannot enable the cpuset controller" || return
  echo "$cpus" >"/sys/fs/cgroup/$1/cpuset.cpus" || mh_die "host $1: cpuset.cpus $cpus refused" || return
  mh_log "host $1 on CPUs $(cat "/sys/fs/cgroup/$1/cpuset.cpus.effective")"
}

# mh_host_up NAME INDEX: "boot" host NAME (LAN address .INDEX, 1..99) and start its bulkheadd. A
# host killed by mh_kill_host can be booted again: its --root (the "disk") is kept.
mh_host_up() {
  local name=$1 index=$2 dir
  mh_check_name "$name" || return
  [[ $index =~ ^[0-9]+$ ]] && ((index >= 1 && index <= 99)) || mh_die "bad host index $index (1..99)" || return
  mh_host_alive "$name" && { mh_die "host $name is up already"; return; }
  mh_lan_up || return
  dir=$MH_BASE/$name
  mkdir -p "$dir/root"
  echo "$index" >"$dir/index"
  ip netns add "mh-$name"
  ip -n "mh-$name" link set lo up
  ip link add lan0 netns "mh-$name" type veth peer name "$name" netns mh-lan
  ip -n mh-lan link set "$name" master lan up
  ip -n "mh-$name" addr add "$MH_LAN4.$index/24" dev lan0
  ip -n "mh-$name" addr add "${MH_LAN6}:$index/64" dev lan0 nodad
  ip -n "mh-$name" link set lan0 up
  mkdir -p "/sys/fs/cgroup/$name/init.scope"
  mh_pin_cpus "$name" || return
  rm -f "$dir/init.ready"
  # unshare forks the init (--fork) and waits for it; the init is unshare's only child.
  nsenter --net="/run/netns/mh-$name" unshare --pid --fork --mount-proc --uts --ipc --propagation private \
    bash -c "$MH_INIT" mh-init "$name" "$dir/init.ready" >>"$dir/init.log" 2>&1 &
  local outer=$! init=""
  # Not a job of the caller's shell: bash would print "Killed" for it when the host dies.
  disown "$outer"
  for _ in $(seq 1 200); do
    init=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null || true)
    init=${init%% *}
    [[ -n $init && -f $dir/init.ready ]] && break
    sleep 0.05
  done
  [[ -n $init && -f $dir/init.ready ]] || mh_die "host $name: its init did not come up ($(cat "$dir/init.log"))" || return
  echo "$init" >"$dir/init.pid"
  readlink "/proc/$init/ns/pid" >"$dir/pidns"
  mh_daemon_start "$name"
}

# mh_hosts_up NAME:INDEX...: mh_host_up for several hosts at once (a host's boot is mostly waiting
# for its daemon, and under TCG that is seconds each); fails if any host does not come up.
mh_hosts_up() {
  mh_lan_up || return
  local spec pids=() rc=0 i=0
  for spec in "$@"; do
    mh_host_up "${spec%%:*}" "${spec##*:}" &
    pids+=($!)
  done
  for spec in "$@"; do
    wait "${pids[i]}" || { mh_log "host ${spec%%:*} did not come up"; rc=1; }
    i=$((i + 1))
  done
  return $rc
}

# mh_in NAME CMD...: run CMD as a process of host NAME (its net, mount, UTS, IPC and pid
# namespaces and its cgroup /NAME/init.scope): it dies with the host. The working directory is /.
mh_in() {
  local name=$1 init
  shift
  init=$(mh_init_pid "$name")
  [[ -n $init ]] || mh_die "host $name is down" || return
  # shellcheck disable=SC2016
  nsenter -t "$init" --net --mount --uts --ipc --pid -- \
    sh -c 'echo 0 >"$0" && exec "$@"' "/sys/fs/cgroup/$name/init.scope/cgroup.procs" "$@"
}

# mh_on NAME CMD...: run CMD in host NAME's namespaces but not its cgroup (a client program on the
# host, not counted among the host's processes by mh_host_pids). The pid namespace matters: the
# daemon checks an API client's credentials through /proc/PID of the pid SO_PEERCRED gives it,
# which is 0 for a process outside its pid namespace (refused as "permission denied").
mh_on() {
  local name=$1 init
  shift
  init=$(mh_init_pid "$name")
  [[ -n $init ]] || mh_die "host $name is down" || return
  nsenter -t "$init" --net --mount --uts --ipc --pid -- "$@"
}

# mh_ctl NAME ARGS...: bulkheadctl on host NAME (its default socket /run/bulkhead/bulkheadd.sock in
# the host's own /run). Paths in ARGS must be absolute.
# Bounded by MH_CTL_TIMEOUT seconds (default 600; `events` streams until killed, so it is not):
# a call that gets no answer says so and prints every daemon's threads (a benchmark run once made
# no progress for 15 minutes with nothing to say where).
mh_ctl() {
  local name=$1 rc=0 limit=${MH_CTL_TIMEOUT:-600}
  shift
  if [[ ${1:-} == events ]]; then
    mh_on "$name" "$MH_BIN/bulkheadctl" "$@"
    return
  fi
  mh_on "$name" timeout -k 5 "$limit" "$MH_BIN/bulkheadctl" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    mh_log "bulkheadctl $* on $name: no answer in $limit s; where the hosts' processes are:"
    mh_stacks >&2
  fi
  return "$rc"
}

# mh_stacks: every host's bulkheadd threads (gdb), and the state and kernel wait channel of each
# bulkhead, CRIU and etcd process: what a hung call was waiting for.
mh_stacks() {
  local h pid
  for h in $(mh_hosts); do
    pid=$(mh_daemon_pid "$h")
    [[ -n $pid ]] || continue
    echo "--- $h: bulkheadd $pid"
    timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)' | cut -c 1-200
  done
  echo "--- processes"
  ps -eo pid,ppid,stat,wchan:32,etimes,args | grep -E 'bulkhead|criu|etcd|dirtier' | grep -v grep | cut -c 1-200
}

# mh_daemon_pid NAME: the host pid of NAME's bulkheadd (empty if it is not running).
mh_daemon_pid() {
  local f=$MH_BASE/$1/daemon.pid pid
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == bulkheadd ]] && echo "$pid"
  return 0
}

# mh_daemon_start NAME: start bulkheadd in host NAME and wait until it answers.
mh_daemon_start() {
  local name=$1 dir=$MH_BASE/$1 init outer pid="" listen
  init=$(mh_init_pid "$name")
  [[ -n $init ]] || mh_die "host $name is down" || return
  # Expanded here: a command substitution in the background command's words would run in the
  # forked job, whose children are then those subshells until it execs nsenter.
  listen=$(mh_addr "$name")
  # Privileged unless the scenario asks for unprivileged containers: every host's root is on the
  # VM's tmpfs, which Linux 6.1 cannot idmap (vm-migrate-unprivileged.sh puts them on ext4).
  local privilege=--privileged-default
  [[ " $MH_DAEMON_FLAGS " == *" --unprivileged-default "* ]] && privilege=""
  # As mh_in, but called directly so that $! is nsenter and its only child the daemon.
  # shellcheck disable=SC2016,SC2086
  nsenter -t "$init" --net --mount --uts --ipc --pid -- \
    sh -c 'echo 0 >"$0" && exec "$@"' "/sys/fs/cgroup/$name/init.scope/cgroup.procs" \
    "$MH_BIN/bulkheadd" --root "$dir/root" --socket /run/bulkhead/bulkheadd.sock \
    --cgroup-parent "/$name" --listen "$listen" --host-name "$name" --no-lxcfs $privilege $MH_DAEMON_FLAGS \
    >>"$dir/bulkheadd.log" 2>&1 &
  outer=$!
  # nsenter re-raises its child's SIGKILL: keep bash from reporting that when the host dies.
  disown "$outer"
  # Up to 120 s: under TCG on a loaded machine the first start (key and certificate) is slow.
  local deadline=$((SECONDS + 120)) err=""
  while ((SECONDS < deadline)); do
    # nsenter's only child, once it has exec'd bulkheadd.
    pid=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null || true)
    pid=${pid%% *}
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == bulkheadd ]] || pid=""
    if [[ -n $pid ]] && err=$(mh_ctl "$name" list 2>&1 >/dev/null); then
      echo "$pid" >"$dir/daemon.pid"
      return 0
    fi
    kill -0 "$outer" 2>/dev/null || break
    sleep 0.2
  done
  mh_die "host $name: bulkheadd (pid ${pid:-?}) does not answer: ${err:-it exited}; its log:
$(tail -20 "$dir/bulkheadd.log")"
}

# mh_daemon_kill NAME: SIGKILL host NAME's bulkheadd only (its containers and monitors stay).
mh_daemon_kill() {
  local pid
  pid=$(mh_daemon_pid "$1")
  [[ -n $pid ]] || return 0
  kill -9 "$pid"
  local _
  for _ in $(seq 1 1200); do
    [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
    sleep 0.05
  done
  mh_die "host $1: bulkheadd $pid still there 60 s after SIGKILL (state $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null), waiting in $(cat "/proc/$pid/wchan" 2>/dev/null))"
}

# mh_pair SRC DST: SRC gets DST as a remote named DST (trust add on DST, remote add on SRC).
mh_pair() {
  local src=$1 dst=$2 token
  token=$(mh_ctl "$dst" trust add "$src" | tail -n 1) || mh_die "trust add $src on $dst" || return
  mh_ctl "$src" remote add "$dst" "$(mh_addr "$dst")" --token "$token" >/dev/null ||
    mh_die "remote add $dst on $src"
}

# mh_cluster_join MEMBER HOST: HOST joins the cluster's trust with a token MEMBER makes for it
# (the first token makes the cluster's key); HOST finds MEMBER's address in etcd.
mh_cluster_join() {
  local member=$1 host=$2 token
  token=$(mh_ctl "$member" cluster token "$host" | tail -n 1) || mh_die "cluster token $host on $member" || return
  mh_ctl "$host" cluster join --token "$token" >/dev/null || mh_die "cluster join of $host through $member"
}

# mh_rootfs: a busybox system rootfs at $MH_BASE/rootfs (made once), for mh_host_template.
mh_rootfs() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  [[ -d $MH_BASE/rootfs/bin ]] && return 0
  local mk=${MH_MKROOTFS:-$here/../storage/make-busybox-rootfs.sh}
  sh "$mk" "$MH_BASE/rootfs" >/dev/null
}

# mh_host_template NAME: the template "busybox" on host NAME.
mh_host_template() {
  mh_rootfs || return
  mh_ctl "$1" template import busybox "$MH_BASE/rootfs" >/dev/null
}

# mh_host_net NAME: the routed network $MH_NET on host NAME, uplink lan0: a container's address is
# answered for on the LAN by its host (proxy ARP / proxy NDP), so the client and the other hosts
# reach it directly. Every host has the same subnets, so an address can move between hosts.
mh_host_net() {
  mh_ctl "$1" network create "$MH_NET" --routed --uplink lan0 --ipv4 "$MH_NET4" --ipv6 "$MH_NET6" >/dev/null
}

# mh_ct_create HOST CT N [CREATE ARGS...]: container CT on HOST, on $MH_NET with the addresses
# mh_ct_ip4/mh_ct_ip6 INDEX N, from the busybox template, started.
mh_ct_create() {
  local host=$1 ct=$2 n=$3 index
  shift 3
  index=$(mh_index "$host")
  mh_ctl "$host" create "$ct" --template busybox \
    --net "$MH_NET:ipv4=$(mh_ct_ip4 "$index" "$n"),ipv6=$(mh_ct_ip6 "$index" "$n")" --start "$@" >/dev/null
}

# mh_host_pids NAME: host pids of every process of host NAME (its cgroup subtree).
mh_host_pids() {
  [[ -d /sys/fs/cgroup/$1 ]] || return 0
  find "/sys/fs/cgroup/$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -n
}

# mh_kill_host NAME: the host dies: SIGKILL its pid-namespace init (the kernel kills every process
# of the namespace, nested ones too), wait until none is left, unplug it from the LAN (a dead host
# answers nothing: peers see timeouts or "no route", not a refused connection) and remove its
# network namespace and its cgroups. Its --root stays (the "disk"): mh_host_up boots it again.
mh_kill_host() {
  local name=$1 init pidns gone=""
  init=$(mh_init_pid "$name")
  if [[ -n $init ]]; then
    pidns=$(<"$MH_BASE/$name/pidns")
    kill -9 "$init"
    for _ in $(seq 1 600); do
      if ! grep -qx 'populated 1' "/sys/fs/cgroup/$name/cgroup.events" 2>/dev/null &&
        [[ -z $(mh_pidns_members "$pidns") ]]; then
        gone=1
        break
      fi
      sleep 0.05
    done
    [[ -n $gone ]] ||
      mh_die "host $name: processes left after its init was killed: $(mh_host_pids "$name" | paste -sd ' ')" ||
      return
  fi
  rm -f "$MH_BASE/$name/init.pid" "$MH_BASE/$name/daemon.pid"
  ip -n mh-lan link del "$name" 2>/dev/null || true
  ip netns del "mh-$name" 2>/dev/null || true
  mh_rm_cgroup "$name"
}

# Processes whose pid namespace is PIDNS (as readlink /proc/PID/ns/pid prints it).
mh_pidns_members() {
  find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/pid' -printf '%p %l\n' 2>/dev/null |
    awk -v ns="$1" '$2 == ns { split($1, f, "/"); print f[3] }'
}

mh_rm_cgroup() {
  [[ -d /sys/fs/cgroup/$1 ]] || return 0
  local d
  for _ in $(seq 1 100); do
    while read -r d; do rmdir "$d" 2>/dev/null || true; done < <(find "/sys/fs/cgroup/$1" -depth -type d)
    [[ -d /sys/fs/cgroup/$1 ]] || return 0
    sleep 0.05
  done
  mh_die "cgroup /$1 could not be removed"
}

# mh_hosts: the names of the hosts made under $MH_BASE.
mh_hosts() {
  local d
  for d in "$MH_BASE"/*/index; do
    [[ -f $d ]] && basename "$(dirname "$d")"
  done
  return 0
}

# mh_teardown: every host killed, every namespace, link and cgroup gone, $MH_BASE removed. What
# mh_leftovers needs to check that is kept in $MH_BASE.check (mh_leftovers removes it).
mh_teardown() {
  local h rc=0
  [[ -d $MH_BASE ]] || return 0
  mkdir -p "$MH_BASE.check"
  cp "$MH_BASE"/*.before "$MH_BASE.check/" 2>/dev/null || true
  mh_hosts >"$MH_BASE.check/hosts"
  cat "$MH_BASE"/*/pidns >"$MH_BASE.check/pidns" 2>/dev/null || true
  # All at once: each waits for its host's processes to go, seconds under TCG.
  local pids=()
  for h in $(mh_hosts); do
    mh_kill_host "$h" &
    pids+=($!)
  done
  for h in "${pids[@]}"; do wait "$h" || rc=1; done
  mh_etcd_down
  ip netns del mh-client 2>/dev/null || true
  ip netns del mh-lan 2>/dev/null || true
  # `ip netns add` made /run/netns a mount point of its own; undo that if it was not one before and
  # nobody else's namespace is left in it.
  if [[ -f $MH_BASE/mounts.before ]] && ! grep -qx /run/netns "$MH_BASE/mounts.before" &&
    [[ -z $(ls -A /run/netns 2>/dev/null) ]]; then
    umount /run/netns 2>/dev/null || true
  fi
  # The hosts' mounts died with their mount namespaces, so nothing should be mounted under
  # $MH_BASE here; if something is, leave the directory rather than rm -rf through a mount.
  if grep -q " ${MH_BASE}[/ ]" /proc/self/mountinfo; then
    mh_die "mounts under $MH_BASE: $(grep " ${MH_BASE}[/ ]" /proc/self/mountinfo)"
    rc=1
  else
    rm -rf "$MH_BASE"
  fi
  return $rc
}

# mh_leftovers: after mh_teardown, prints what it left behind, one line each (nothing when clean):
# links, mount points, cgroups and namespaces (held by a process or an fd) that were not there
# before the first host, mh-* network namespaces, processes in the hosts' pid namespaces or running
# a binary of $MH_BIN, $MH_BASE itself.
mh_leftovers() {
  local check=$MH_BASE.check ns h p extra
  ns=$(ip netns list | awk '{print $1}' | grep '^mh-' || true)
  [[ -z $ns ]] || echo "network namespaces: $(echo "$ns" | paste -sd ' ')"
  local what
  for what in links mounts cgroups namespaces; do
    [[ -f $check/$what.before ]] || continue
    extra=$(comm -13 "$check/$what.before" <("mh_state_$what"))
    [[ -z $extra ]] || echo "$what: $(echo "$extra" | paste -sd ' ')"
  done
  grep " ${MH_BASE}[/ ]" /proc/self/mountinfo | sed 's/^/mount: /' || true
  [[ ! -e $MH_BASE ]] || echo "directory: $MH_BASE"
  if [[ -f $check/hosts ]]; then
    while read -r h; do
      [[ -n $h && -d /sys/fs/cgroup/$h ]] && echo "cgroup: /$h"
    done <"$check/hosts"
  fi
  if [[ -f $check/pidns ]]; then
    while read -r p; do
      [[ -n $p ]] || continue
      local members
      members=$(mh_pidns_members "$p")
      [[ -z $members ]] || echo "processes of $p: $(echo "$members" | paste -sd ' ')"
    done <"$check/pidns"
  fi
  local bin
  bin=$(cd "$MH_BIN" && pwd -P)
  find /proc -mindepth 2 -maxdepth 2 -path '/proc/[0-9]*/exe' -printf '%p %l\n' 2>/dev/null |
    awk -v bin="$bin/" 'index($2, bin) == 1 { split($1, f, "/"); print "process " f[3] " (" $2 ") of $MH_BIN" }'
  rm -rf "$check"
  return 0
}

# --- etcd, for cluster scenarios (docs/cluster.md) ---------------------------------------------
# Member K (1..9) of the test bed's etcd cluster is a machine on the LAN: network namespace
# mh-etcdK with lan0 = 198.18.100.(200+K)/24, client port 2379, peer port 2380, data in
# $MH_BASE/etcd/eK. Timings are stretched for TCG (the guest runs ~20x slower than the host):
# heartbeat 300 ms, election 3 s, so a busy guest does not make the members elect again and again.
MH_ETCD_COUNT_FILE=etcd/count
mh_etcd_ip() { echo "$MH_LAN4.$((200 + $1))"; }
mh_etcd_count() { cat "$MH_BASE/$MH_ETCD_COUNT_FILE" 2>/dev/null || echo 0; }
# mh_etcd_endpoints: http://IP:2379,... of every member (for bulkheadd --cluster and etcdctl).
mh_etcd_endpoints() {
  local k out=""
  for k in $(seq 1 "$(mh_etcd_count)"); do out+="${out:+,}http://$(mh_etcd_ip "$k"):2379"; done
  echo "$out"
}
# mh_etcdctl ARGS...: etcdctl (v3 API) from the client machine against every member.
mh_etcdctl() { ETCDCTL_API=3 mh_client etcdctl --endpoints "$(mh_etcd_endpoints)" --command-timeout=10s "$@"; }
mh_etcd_pid() {
  local f=$MH_BASE/etcd/e$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == etcd ]] && echo "$pid"
  return 0
}
# mh_etcd_up COUNT: a COUNT-member etcd cluster on the LAN, started and healthy (a quorum answers).
mh_etcd_up() {
  local count=$1 k initial=""
  [[ $count =~ ^[1-9]$ ]] || mh_die "bad etcd member count $count (1..9)" || return
  command -v etcd >/dev/null || mh_die "etcd is not installed (apt-get install etcd-server etcd-client)" || return
  mh_lan_up || return
  mkdir -p "$MH_BASE/etcd"
  echo "$count" >"$MH_BASE/$MH_ETCD_COUNT_FILE"
  for k in $(seq 1 "$count"); do initial+="${initial:+,}e$k=http://$(mh_etcd_ip "$k"):2380"; done
  echo "$initial" >"$MH_BASE/etcd/initial"
  for k in $(seq 1 "$count"); do
    ip netns add "mh-etcd$k"
    ip -n "mh-etcd$k" link set lo up
    ip link add lan0 netns "mh-etcd$k" type veth peer name "etcd$k" netns mh-lan
    ip -n mh-lan link set "etcd$k" master lan up
    ip -n "mh-etcd$k" addr add "$(mh_etcd_ip "$k")/24" dev lan0
    ip -n "mh-etcd$k" link set lan0 up
    mh_etcd_start "$k" new || return
  done
  mh_etcd_wait_healthy
}
# mh_etcd_start K [new|existing]: start member K (again: its data directory is kept).
# Raft timing: heartbeat 300 ms, election timeout 3 s by default (no spurious elections in a loaded
# TCG VM); MH_ETCD_HEARTBEAT_MS and MH_ETCD_ELECTION_MS override them. etcd's minimum lease TTL is
# 1.5x the election timeout, rounded up: 5 s by default, so a --cluster-ttl of 3 s needs 2000 ms.
mh_etcd_start() {
  local k=$1 state=${2:-existing} ip
  ip=$(mh_etcd_ip "$k")
  ip netns exec "mh-etcd$k" etcd --name "e$k" --data-dir "$MH_BASE/etcd/e$k" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$(<"$MH_BASE/etcd/initial")" --initial-cluster-state "$state" \
    --heartbeat-interval "${MH_ETCD_HEARTBEAT_MS:-300}" --election-timeout "${MH_ETCD_ELECTION_MS:-3000}" \
    >>"$MH_BASE/etcd/e$k.log" 2>&1 &
  echo $! >"$MH_BASE/etcd/e$k.pid"
  disown $!
}
# mh_etcd_wait_healthy [SECONDS]: until a write through the cluster succeeds (a quorum and a leader).
mh_etcd_wait_healthy() {
  local deadline=$((SECONDS + ${1:-120}))
  while ((SECONDS < deadline)); do
    mh_etcdctl put /mh/health ok >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  mh_die "etcd: no healthy cluster after ${1:-120} s; logs: $(tail -5 "$MH_BASE"/etcd/e*.log)"
}
# mh_etcd_kill K: SIGKILL member K (its data stays; mh_etcd_start K brings it back).
mh_etcd_kill() {
  local pid
  pid=$(mh_etcd_pid "$1")
  [[ -n $pid ]] || return 0
  kill -9 "$pid"
  local _
  for _ in $(seq 1 1200); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.05
  done
  mh_die "etcd member $1: pid $pid still there 60 s after SIGKILL"
}
# mh_etcd_down: every member killed, its namespace gone (mh_teardown calls it).
mh_etcd_down() {
  local k
  for k in $(seq 1 "$(mh_etcd_count)"); do
    mh_etcd_kill "$k"
    ip netns del "mh-etcd$k" 2>/dev/null || true
  done
  rm -f "$MH_BASE/$MH_ETCD_COUNT_FILE"
}

# --- Scenario helpers, for the vm-*.sh scripts -------------------------------------------------
# mh_step TEXT: a step done, with the seconds since the scenario began (MH_T0).
# mh_fail TEXT: why, then each host's last daemon log lines; exits 1 (the EXIT trap tears down).
# mh_scenario_begin: sets MH_T0 and that trap (mh_teardown, unless mh_scenario_end ran; then
# MH_ON_EXIT, if set, runs first: a scenario's own background processes).
# mh_scenario_end: tears down, fails on anything left behind (mh_leftovers).
MH_T0=${MH_T0:-$(date +%s)}
mh_step() { echo "== $* ($(($(date +%s) - MH_T0)) s)"; }
mh_fail() {
  echo "FAIL: $*" >&2
  local h
  for h in $(mh_hosts); do
    echo "--- $h: bulkheadd log" >&2
    tail -30 "$MH_BASE/$h/bulkheadd.log" >&2 || true
  done
  exit 1
}
MH_TORN_DOWN=""
mh_on_exit() {
  [[ -z ${MH_ON_EXIT:-} ]] || eval "$MH_ON_EXIT" || true
  [[ -n $MH_TORN_DOWN ]] || mh_teardown || true
}
mh_scenario_begin() {
  MH_T0=$(date +%s)
  trap mh_on_exit EXIT
}
mh_scenario_end() {
  MH_TORN_DOWN=1
  mh_teardown || mh_fail "teardown"
  local left
  left=$(mh_leftovers)
  [[ -z $left ]] || mh_fail "teardown left: $left"
  mh_step "teardown: nothing left"
}
# mh_no_migration_files HOST...: no transfer file, image directory or arrival marker of a
# migration (<root>/migrate-*) is left on any of the hosts.
mh_no_migration_files() {
  local h left
  for h in "$@"; do
    left=$(find "$MH_BASE/$h/root" -maxdepth 1 -name 'migrate-*' 2>/dev/null)
    [[ -z $left ]] || mh_fail "$h keeps migration files: $left"
  done
}
