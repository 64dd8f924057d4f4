#!/usr/bin/env bash
# Networking of bulkheadd under a real kernel (run inside tests/vm/run-in-vm.sh by
# run-vm-network.sh): bulkheadd in a network namespace of its own ("bhd"), a neighbour namespace
# ("bhnb") on its uplink veth. Two containers on one bridge ping each other over IPv4 and IPv6 and
# the bridge address; a routed container is reachable from the neighbour; a 10mbit egress cap is
# measured by a timed busybox nc transfer to the neighbour (within 10 %); bulkheadd SIGKILL +
# restart leaves ping and the cap working; destroy leaves no link, route, qdisc or proxy entry.
# Addresses: 198.18.0.0/15 and fd00::/8 only. Usage: vm-network.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
bin=$1 mkrootfs=$2
work=$(mktemp -d /tmp/bhd-net.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
inns() { ip netns exec bhd "$@"; }
innb() { ip netns exec bhnb "$@"; }
cleanup() {
  [[ -n ${daemon:-} ]] && kill "$daemon" 2>/dev/null || true
  ip netns del bhnb 2>/dev/null || true
  ip netns del bhd 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- daemon log" >&2; cat "$work/bulkheadd.log" >&2 || true; exit 1; }
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
t0=$(date +%s)

start_daemon() {
  # nsenter, not ip netns exec: the daemon keeps the VM's mount namespace (ip netns exec makes a
  # new one per call, and a restarted daemon would not see its running containers' mounts).
  nsenter --net=/run/netns/bhd "$bin/bulkheadd" --root "$root" --socket "$sock" --cgroup-parent /bulkhead-vmnet --privileged-default \
    >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}
pings() { # FROM TO...
  local from=$1
  shift
  for to in "$@"; do
    ctl exec "$from" -- ping -c 1 -W 5 "$to" >/dev/null || fail "$from cannot ping $to"
  done
}
# The container's upload to the neighbour, measured at the neighbour's eth0 for a 4 s window
# after 1 s of warm-up while busybox nc streams zeros; prints bit/s.
port=5000
measure_egress() { # CONTAINER
  local bb=$work/rootfs/bin/busybox
  # A fresh port each time: the previous listener may not be gone yet.
  port=$((port + 1))
  # The listener's stdin stays open (busybox nc quits at EOF on stdin); the sleep outlasts the window.
  sleep 40 | innb "$bb" nc -l -p "$port" >/dev/null &
  local recv=$!
  sleep 0.5
  ctl exec "$1" -- sh -c "dd if=/dev/zero bs=64k count=100000 2>/dev/null | nc 198.18.40.100 $port" \
    >/dev/null 2>&1 &
  local send=$!
  # The window opens once the stream flows (an exec under TCG can take seconds to start), then
  # after 1 s more of warm-up; at most 20 s of waiting.
  local base now
  base=$(innb cat /sys/class/net/eth0/statistics/rx_bytes)
  for _ in $(seq 1 40); do
    now=$(innb cat /sys/class/net/eth0/statistics/rx_bytes)
    ((now - base > 200000)) && break
    sleep 0.5
  done
  sleep 1
  # Counter and clock read by one shell right after each other (a loaded TCG VM is slow to spawn).
  local b0 t0n b1 t1n
  read -r b0 t0n < <(innb sh -c 'echo $(cat /sys/class/net/eth0/statistics/rx_bytes) $(date +%s%N)')
  sleep 4
  read -r b1 t1n < <(innb sh -c 'echo $(cat /sys/class/net/eth0/statistics/rx_bytes) $(date +%s%N)')
  kill "$recv" "$send" 2>/dev/null || true
  wait "$recv" "$send" 2>/dev/null || true
  ctl exec "$1" -- sh -c 'pkill nc; true' >/dev/null 2>&1 || true
  echo $(((b1 - b0) * 8 * 1000000000 / (t1n - t0n)))
}
check_rate() { # MEASURED CAP WHERE
  local pct=$(($1 * 1000 / $2))
  echo "   measured $(($1 / 1000)) kbit/s for a $(($2 / 1000000))mbit cap: $((pct / 10)).$((pct % 10)) % ($3)"
  # Recorded, not fatal at once, so every step's result is printed; the scenario fails at the end.
  ((pct >= 900 && pct <= 1100)) || rate_failures+=("$3: $1 bit/s for a $2 bit/s cap")
}

ip netns add bhd
ip netns add bhnb
set -x # the uplink and the neighbour
ip -n bhd link set lo up
ip -n bhnb link set lo up
ip -n bhd link add up0 type veth peer name eth0 netns bhnb
ip -n bhd link set up0 up
ip -n bhnb link set eth0 up
ip -n bhd addr add 198.18.40.1/24 dev up0
ip -n bhd addr add fd00:40::1/64 dev up0 nodad
ip -n bhnb addr add 198.18.40.100/24 dev eth0
ip -n bhnb addr add fd00:40::ff/64 dev eth0 nodad
ip -n bhnb route add default via 198.18.40.1
ip -n bhnb -6 route add default via fd00:40::1
set +x
snapshot() {
  ip -n bhd -o link | sed 's/^[0-9]*: //'
  ip -n bhd route
  ip -n bhd -6 route
  ip -n bhd -6 neigh show proxy
  tc -n bhd qdisc
}
snapshot >"$work/before"

sh "$mkrootfs" "$work/rootfs" >/dev/null
start_daemon
ctl template import busybox "$work/rootfs" >/dev/null
ctl network create lan0 --bridge --ipv4 198.18.41.1/24 --ipv6 fd00:41::1/64 >/dev/null
ctl network create wan --routed --uplink up0 --ipv4 198.18.40.64/26 --ipv6 fd00:40::100/120 >/dev/null
step "networks: $(ctl network list | tr -s ' ' | tail -n +2 | paste -sd ';')"

ctl create b1 --template busybox --net lan0 --start >/dev/null || fail "create b1"
ctl create b2 --template busybox --net lan0 --start >/dev/null || fail "create b2"
pings b1 198.18.41.3 fd00:41::3 198.18.41.1 fd00:41::1
pings b2 198.18.41.2 fd00:41::2
step "bridge: b1 <-> b2 over IPv4 and IPv6, and the bridge address: ok"

ctl create r1 --template busybox --net wan,egress=10mbit --start >/dev/null || fail "create r1"
r1=$(ctl info r1 --json | jq -c '.nics[0] | {ipv4, ipv6, mac, egress}')
ip netns exec bhnb "$work/rootfs/bin/busybox" ping -c 1 -W 5 198.18.40.65 >/dev/null || fail "the neighbour cannot reach r1 over IPv4"
ip netns exec bhnb "$work/rootfs/bin/busybox" ping -c 1 -W 5 fd00:40::101 >/dev/null || fail "the neighbour cannot reach r1 over IPv6"
pings r1 198.18.40.100 fd00:40::ff
step "routed: r1 $r1 reachable from the neighbour over IPv4 and IPv6, and reaches it: ok"

rate_failures=()
rate=$(measure_egress r1)
check_rate "$rate" 10000000 "after start"
tc -n bhd -s qdisc show dev "$(ip -n bhd -o link | grep -o 'bhifb[0-9]*' | head -1)" | head -3
step "egress cap measured"

kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
start_daemon
ip netns exec bhnb "$work/rootfs/bin/busybox" ping -c 1 -W 5 198.18.40.65 >/dev/null || fail "after restart: the neighbour cannot reach r1"
ip netns exec bhnb "$work/rootfs/bin/busybox" ping -c 1 -W 5 fd00:40::101 >/dev/null || fail "after restart: the neighbour cannot reach r1 (IPv6)"
pings b1 198.18.41.3 fd00:41::3
rate=$(measure_egress r1)
check_rate "$rate" 10000000 "after a daemon SIGKILL + restart"
tc -n bhd -s qdisc show dev "$(ip -n bhd -o link | grep -o 'bhifb[0-9]*' | head -1)" | head -3
step "bulkheadd SIGKILLed and restarted: pings and the cap still work"

ctl set r1 --net-limit egress=5mbit
rate=$(measure_egress r1)
check_rate "$rate" 5000000 "changed live with set --net-limit"
step "cap changed live"

for c in b1 b2 r1; do ctl destroy "$c" --force >/dev/null || fail "destroy $c"; done
ctl network rm lan0
ctl network rm wan
snapshot >"$work/after"
diff -u "$work/before" "$work/after" || fail "links, routes, proxy entries or qdiscs left"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=
rmdir /sys/fs/cgroup/bulkhead-vmnet 2>/dev/null || true
step "destroyed: no link, route, qdisc or proxy entry left"
((${#rate_failures[@]} == 0)) || fail "rates not within 10 % of the cap: ${rate_failures[*]}"
echo "vm-network: PASS ($(($(date +%s) - t0)) s)"
