#!/usr/bin/env bash
# NAT of a managed network end to end (run inside tests/vm/run-in-vm.sh by run-vm-nat.sh): bulkheadd
# in a netns of its own ("host") with an uplink veth to a "neighbour" netns (198.18.0.1/30 <->
# 198.18.0.2/30, no route back to the container subnet), a container on a --nat bridge reaches the
# neighbour, which sees the host's uplink address as the peer; a port forward (`port add c1
# 8080:9000`) lets the neighbour reach a busybox nc listening in c1 through 198.18.0.1:8080 (c1 sees
# the neighbour's own address); both again after bulkheadd is SIGKILLed and restarted; destroy +
# network rm leave no nft table, link or route.
# Usage: vm-nat.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
bin=$1 mkrootfs=$2
work=$(mktemp -d /tmp/bhd-nat.XXXXXX)
root=$work/root sock=$work/bulkheadd.sock
hostns=bhnat-host nbns=bhnat-nb
ctl() { "$bin/bulkheadctl" --socket "$sock" "$@"; }
in_host() { nsenter --net=/run/netns/$hostns "$@"; }
in_nb() { nsenter --net=/run/netns/$nbns "$@"; }
fail() { echo "FAIL: $*" >&2; echo "--- daemon log" >&2; cat "$work/bulkheadd.log" >&2 || true; exit 1; }
t0=$(date +%s)
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
cleanup() {
  [[ -n ${daemon:-} ]] && kill -9 "$daemon" 2>/dev/null || true
  ip netns del $nbns 2>/dev/null || true
  ip netns del $hostns 2>/dev/null || true
}
trap cleanup EXIT

start_daemon() {
  # nsenter, not `ip netns exec`: the daemon keeps the VM's mount namespace.
  # Called directly (not through in_host), so $! is nsenter, which execs bulkheadd: the daemon's pid.
  nsenter --net=/run/netns/$hostns "$bin/bulkheadd" --root "$root" --socket "$sock" --cgroup-parent /bulkhead-nat --privileged-default \
    >>"$work/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do ctl list >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "bulkheadd did not come up"
}

# The container connects to the neighbour's nc, which runs netstat for the connection: the peer it
# shows must be the uplink address (masqueraded), never the container's 198.18.77.x.
reaches_neighbour() {
  in_nb busybox nc -l -p 9000 -e busybox netstat -tn >/dev/null 2>&1 &
  local listener=$! seen=""
  for _ in $(seq 1 100); do
    seen=$(ctl exec c1 -- nc -w 3 198.18.0.2 9000 2>/dev/null || true)
    [[ $seen == *":9000"* ]] && break
    sleep 0.2
  done
  wait "$listener" || true
  local line
  line=$(grep '198.18.0.2:9000' <<<"$seen" || true)
  [[ $line == *"198.18.0.1:"* ]] || fail "$1: the neighbour saw: $seen"
  [[ $seen != *"198.18.77."* ]] || fail "$1: the container address reached the neighbour: $seen"
  step "$1: c1 -> neighbour 198.18.0.2:9000 ok, the neighbour's peer: $(awk '{print $5}' <<<"$line")"
}

# The neighbour connects to the host's uplink address 198.18.0.1:8080; the DNAT rule takes it to
# c1's nc on 9000, which runs netstat for the connection: c1's peer must be the neighbour 198.18.0.2.
forward_reaches_container() {
  ctl exec c1 -- nc -l -p 9000 -e netstat -tn >/dev/null 2>&1 &
  local listener=$! seen=""
  for _ in $(seq 1 100); do
    [[ $(ctl exec c1 -- netstat -tln 2>/dev/null) == *":9000 "* ]] && break
    sleep 0.2
  done
  for _ in $(seq 1 100); do
    seen=$(in_nb busybox nc -w 3 198.18.0.1 8080 2>/dev/null || true)
    [[ $seen == *":9000"* ]] && break
    sleep 0.2
  done
  wait "$listener" || true
  local line
  line=$(grep '198.18.77.10:9000' <<<"$seen" || true)
  [[ $line == *"198.18.0.2:"* ]] || fail "$1: the forward: c1's netstat: $seen"
  step "$1: neighbour -> 198.18.0.1:8080 -> c1 198.18.77.10:9000 ok, c1's peer: $(awk '{print $5}' <<<"$line")"
}

ip netns add $hostns
ip netns add $nbns
ip link add up0 netns $hostns type veth peer name nb0 netns $nbns
in_host ip link set lo up
in_host ip addr add 198.18.0.1/30 dev up0
in_host ip link set up0 up
in_nb ip link set lo up
in_nb ip addr add 198.18.0.2/30 dev nb0
in_nb ip link set nb0 up
routes_before=$(in_host ip route show)
step "netns $hostns (uplink up0 198.18.0.1/30) and neighbour $nbns (nb0 198.18.0.2/30)"

sh "$mkrootfs" "$work/rootfs" >/dev/null
start_daemon
ctl template import busybox "$work/rootfs" >/dev/null
ctl network create wan0 --bridge --ipv4 198.18.77.1/24 --nat --uplink up0 || fail "network create --nat"
ctl create c1 --template busybox --net wan0:ipv4=198.18.77.10 --start >/dev/null || fail "create c1"
ctl port add c1 8080:9000 || fail "port add"
dnat=$(in_host nft list table ip bulkhead_wan0 | grep 'iifname' | sed 's/^[[:space:]]*//')
step "port forward: $dnat"
[[ $dnat == 'iifname "up0" fib daddr type local tcp dport 8080 dnat to 198.18.77.10:9000' ]] || fail "dnat: $dnat"
rule=$(in_host nft list table ip bulkhead_wan0 | grep masquerade | sed 's/^[[:space:]]*//')
step "table ip bulkhead_wan0: $rule; ip_forward $(in_host cat /proc/sys/net/ipv4/ip_forward)"
[[ $rule == 'ip saddr 198.18.77.0/24 ip daddr != 198.18.77.0/24 oifname "up0" masquerade' ]] || fail "rule: $rule"
reaches_neighbour "after start"
forward_reaches_container "after start"

step "SIGKILL bulkheadd and start it again"
[[ $(cat /proc/$daemon/comm) == bulkheadd ]] || fail "pid $daemon is $(cat /proc/$daemon/comm), not bulkheadd"
old_daemon=$daemon
kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
! kill -0 "$old_daemon" 2>/dev/null || fail "bulkheadd $old_daemon survived SIGKILL"
start_daemon
step "bulkheadd $old_daemon killed, $daemon serving"
[[ $(in_host nft list tables) == "table ip bulkhead_wan0" ]] || fail "tables after restart: $(in_host nft list tables)"
reaches_neighbour "after the daemon restart"
[[ $(in_host nft list table ip bulkhead_wan0 | grep -c 'dnat to') == 2 ]] ||
  fail "rules after restart: $(in_host nft list table ip bulkhead_wan0)"
forward_reaches_container "after the daemon restart"
ctl port list

ctl destroy c1 --force >/dev/null || fail "destroy"
ctl network rm wan0 >/dev/null || fail "network rm"
tables=$(in_host nft list tables)
[[ -z $tables ]] || fail "tables left: $tables"
links=$(in_host ip -o link | grep -c 'bh-' || true)
[[ $links == 0 ]] || fail "links left: $(in_host ip -o link)"
[[ $(in_host ip route show) == "$routes_before" ]] || fail "routes: $(in_host ip route show)"
step "destroy + network rm: no nft table, no bh- link, routes as before"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=""
echo "vm-nat: OK ($(($(date +%s) - t0)) s)"
