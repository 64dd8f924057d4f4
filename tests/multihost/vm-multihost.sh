#!/usr/bin/env bash
# The multi-host test bed end to end (run inside tests/vm/run-in-vm.sh by run-vm-multihost.sh):
# three simulated hosts (tests/multihost/lib.sh) each run their own bulkheadd; host1 pairs with
# host2 and host3 and `remote list` shows both online; a wrong secret and a token of another host
# are refused and pair nothing; a container on each host is reached over the LAN from the client
# namespace (ping over IPv4 and IPv6, a TCP connection) and from a container of another host;
# host2 dies (its pid-namespace init SIGKILLed): none of its processes is left (daemon, monitors,
# containers), host1's `remote list` shows it unreachable with the error, host3 still online and
# the other containers still reachable; host2 boots again from its --root: host1 sees it online
# again and its container, stopped by the power loss, starts, is announced at the new NIC's MAC
# (the client's ARP entry moves without asking) and answers; teardown leaves no
# namespace, link, mount, cgroup or process.
# Usage: vm-multihost.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
bb=/bin/busybox

# --- three hosts
mh_hosts_up host1:1 host2:2 host3:3 || mh_fail "the hosts did not come up"
vm_pidns=$(readlink /proc/self/ns/pid)
for i in 1 2 3; do
  h=host$i pid=$(mh_daemon_pid "host$i")
  [[ -n $pid ]] || mh_fail "$h: no bulkheadd"
  [[ $(readlink "/proc/$pid/ns/pid") != "$vm_pidns" ]] || mh_fail "$h: bulkheadd is in the VM's pid namespace"
  for ns in net mnt uts; do
    [[ $(readlink "/proc/$pid/ns/$ns") == "$(readlink "/proc/$(mh_init_pid "$h")/ns/$ns")" &&
      $(readlink "/proc/$pid/ns/$ns") != "$(readlink "/proc/self/ns/$ns")" ]] || mh_fail "$h: bulkheadd's $ns namespace"
  done
  [[ $(cat "/proc/$pid/cgroup") == "0::/$h/init.scope" ]] || mh_fail "$h: bulkheadd in $(cat "/proc/$pid/cgroup")"
  [[ $(mh_on "$h" hostname) == "$h" ]] || mh_fail "$h: host name $(mh_on "$h" hostname)"
  # Its own /run: the socket is at the default path in the host and nowhere else.
  mh_on "$h" test -S /run/bulkhead/bulkheadd.sock || mh_fail "$h: no socket in its /run/bulkhead"
done
[[ ! -e /run/bulkhead/bulkheadd.sock ]] || mh_fail "a host's socket is in the VM's /run"
mh_step "host1..3 up: bulkheadd pids $(for i in 1 2 3; do mh_daemon_pid host$i; done | paste -sd ' '), each in its own pid, net, mount and UTS namespace and cgroup /hostN/init.scope"

# --- pairing
mh_pair host1 host2 || mh_fail "pairing host1 -> host2"
token=$(mh_ctl host3 trust add host1 | tail -n 1)
[[ $token == bh1:sha256:*:* ]] || mh_fail "trust add printed $token"
# The right certificate, a wrong secret: host3 refuses it, and keeps the real token usable.
bad=${token%:*}:$(printf '%064d' 0)
if out=$(mh_ctl host1 remote add host3 "$(mh_addr host3)" --token "$bad" 2>&1); then mh_fail "a wrong secret was accepted: $out"; fi
mh_step "a wrong secret is refused: $out"
[[ $(wc -l <<<"$out") == 1 ]] || mh_fail "the refusal is not one line: $out"
# A token of host2 presented to host3's address: host3's certificate is not the one it names.
token2=$(mh_ctl host2 trust add hostx | tail -n 1)
if out=$(mh_ctl host1 remote add hostx "$(mh_addr host3)" --token "$token2" 2>&1); then mh_fail "host2's token paired with host3: $out"; fi
[[ $out == *"not the paired"* || $out == *certificate* ]] || mh_fail "another host's token: $out"
mh_step "another host's token is refused: $out"
[[ $(mh_ctl host1 remote list --json | jq -r '[.[].name] | join(" ")') == host2 ]] ||
  mh_fail "the refused tokens paired something: $(mh_ctl host1 remote list)"
mh_ctl host1 remote add host3 "$(mh_addr host3)" --token "$token" >/dev/null || mh_fail "the real token after a wrong one"
list=$(mh_ctl host1 remote list)
echo "$list"
[[ $(mh_ctl host1 remote list --json | jq -r '[.[] | "\(.name)=\(.status)/\(.host)"] | sort | join(" ")') == \
  "host2=online/host2 host3=online/host3" ]] || mh_fail "remote list: $list"
[[ $(mh_ctl host2 trust list --json | jq -r '[.[] | select(.name == "host1" and .state == "trusted")] | length') == 1 ]] ||
  mh_fail "host2 does not trust host1: $(mh_ctl host2 trust list)"
mh_step "host1 paired with host2 and host3: both online"

# --- a container on each host, reachable over the LAN
# The hosts set up at once (as separate machines would): under TCG a container start takes seconds.
mh_rootfs || mh_fail "the busybox rootfs"
setup() { mh_host_template "host$1" && mh_host_net "host$1" && mh_ct_create "host$1" "ct$1" 1; }
pids=()
for i in 1 2 3; do
  setup "$i" &
  pids+=($!)
done
for i in 1 2 3; do wait "${pids[i - 1]}" || mh_fail "host$i: template, network lan or container ct$i"; done
mh_step "a template, the network lan and a started container on each host"
for i in 1 2 3; do
  ip4=$(mh_ct_ip4 "$i" 1) ip6=$(mh_ct_ip6 "$i" 1)
  [[ $(mh_ctl "host$i" info "ct$i" --json | jq -r '.nics[0].ipv4') == "$ip4"* ]] || mh_fail "ct$i: $(mh_ctl "host$i" info "ct$i" --json | jq -c .nics)"
  [[ -n $(find "/sys/fs/cgroup/host$i/ct$i" -name cgroup.procs -exec cat {} +) ]] || mh_fail "ct$i has no process under /host$i/ct$i"
  mh_client $bb ping -c 1 -W 5 "$ip4" >/dev/null || mh_fail "the client cannot ping ct$i at $ip4"
  mh_client $bb ping -c 1 -W 5 "$ip6" >/dev/null || mh_fail "the client cannot ping ct$i at $ip6"
  # A TCP connection from the client: the container answers with its host name.
  mh_ctl "host$i" exec "ct$i" -- nc -l -p 7000 -e hostname >/dev/null 2>&1 &
  listener=$! seen=""
  for _ in $(seq 1 100); do
    [[ $(mh_ctl "host$i" exec "ct$i" -- netstat -tln 2>/dev/null) == *":7000 "* ]] && break
    sleep 0.2
  done
  for _ in $(seq 1 20); do
    seen=$(mh_client $bb nc -w 5 "$ip4" 7000 2>/dev/null || true)
    [[ -n $seen ]] && break
    sleep 0.2
  done
  # Before the wait: a listener nobody reached would block it (fail's teardown kills it).
  [[ -n $seen ]] || mh_fail "no answer over TCP from ct$i at $ip4:7000"
  wait "$listener" || true
  [[ $seen == "$(mh_ctl "host$i" exec "ct$i" -- hostname)" ]] || mh_fail "TCP to ct$i at $ip4:7000 answered \"$seen\""
  mh_step "ct$i on host$i ($ip4, $ip6): the client pings it and its TCP server answered \"$seen\""
done
mh_ctl host1 exec ct1 -- ping -c 1 -W 5 "$(mh_ct_ip4 2 1)" >/dev/null || mh_fail "ct1 cannot reach ct2 on host2"
mh_ctl host1 exec ct1 -- ping -c 1 -W 5 "$(mh_ct_ip6 3 1)" >/dev/null || mh_fail "ct1 cannot reach ct3 on host3"
mh_step "ct1 on host1 reaches ct2 on host2 and ct3 on host3"

# --- host2 dies
host2_pids=$(mh_host_pids host2)
monitors=0
# By its binary: a monitor's comm is "exe" (it runs itself again through /proc/self/exe).
for p in $host2_pids; do [[ $(readlink "/proc/$p/exe" 2>/dev/null) == */bulkhead-monitor ]] && monitors=$((monitors + 1)); done
((monitors >= 1)) || mh_fail "host2 has no monitor among $(for p in $host2_pids; do readlink "/proc/$p/exe"; done | paste -sd ' ')"
host2_pidns=$(<"$MH_BASE/host2/pidns")
old_mac=$(ip -n mh-host2 -j link show lan0 | jq -r '.[0].address')
mh_step "host2 has $(wc -w <<<"$host2_pids") processes ($(for p in $host2_pids; do cat "/proc/$p/comm" 2>/dev/null; done | sort | uniq -c | awk '{print $2"x"$1}' | paste -sd ' ')); SIGKILL its init $(mh_init_pid host2)"
mh_kill_host host2 || mh_fail "killing host2"
for p in $host2_pids; do
  [[ ! -d /proc/$p ]] || mh_fail "process $p of host2 ($(cat "/proc/$p/comm" 2>/dev/null)) survived"
done
[[ -z $(mh_pidns_members "$host2_pidns") ]] || mh_fail "processes left in host2's pid namespace"
[[ ! -d /sys/fs/cgroup/host2 ]] || mh_fail "cgroup /host2 left"
! mh_host_alive host2 || mh_fail "host2 is still up"
mh_step "host2 is dead: none of its processes is left"
# One call: each lists host2 after seconds of ARP timeouts.
json=$(mh_ctl host1 remote list --json)
jq -r '.[] | "\(.name) \(.address) \(.status) \(.error // "")"' <<<"$json"
[[ $(jq -r '.[] | select(.name == "host2") | .status' <<<"$json") == unreachable ]] || mh_fail "host2 in remote list: $json"
err=$(jq -r '.[] | select(.name == "host2") | .error' <<<"$json")
[[ $err == *198.18.100.2:8443* ]] || mh_fail "host2's error does not name its address: $err"
[[ $(jq -r '.[] | select(.name == "host3") | .status' <<<"$json") == online ]] || mh_fail "host3 in remote list: $json"
mh_step "host1: host2 unreachable ($err), host3 online"
for i in 1 3; do
  mh_client $bb ping -c 1 -W 5 "$(mh_ct_ip4 "$i" 1)" >/dev/null || mh_fail "ct$i unreachable after host2 died"
done
if mh_client $bb ping -c 1 -W 2 "$(mh_ct_ip4 2 1)" >/dev/null 2>&1; then mh_fail "ct2 still answers after host2 died"; fi
mh_step "ct1 and ct3 still answer the client, ct2 does not"

# --- host2 boots again from its "disk" (its --root): the pairing and the container are still there
mh_host_up host2 2 || mh_fail "host2 did not boot again"
json=$(mh_ctl host1 remote list --json)
[[ $(jq -r '.[] | select(.name == "host2") | .status' <<<"$json") == online ]] || mh_fail "host2 after its reboot: $json"
state=$(mh_ctl host2 info ct2 --json | jq -r .state)
[[ $state == stopped ]] || mh_fail "ct2 after host2's reboot is \"$state\", not stopped (it died with its host)"
mh_ctl host2 start ct2 || mh_fail "starting ct2 after host2's reboot"
# The rebooted host has a new NIC (a new MAC) and the client's cache still has ct2's address at the
# old one: the daemon announces it (gratuitous ARP) when the container starts, so the client's
# entry holds the new MAC before the client sends anything (without the announcement it would keep
# the old one for up to ~50 s: REACHABLE time, then delay and probes).
new_mac=$(ip -n mh-host2 -j link show lan0 | jq -r '.[0].address')
[[ $new_mac != "$old_mac" ]] || mh_fail "host2's rebooted NIC has its old MAC $old_mac: the check below would prove nothing"
neigh=$(ip -n mh-client -j neigh show "$(mh_ct_ip4 2 1)" dev lan0 | jq -r '.[0].lladdr // "none"')
[[ $neigh == "$new_mac" ]] || mh_fail "the client has ct2's $(mh_ct_ip4 2 1) at $neigh, not at host2's new MAC $new_mac (old $old_mac): no gratuitous ARP"
mh_client $bb ping -c 1 -W 5 "$(mh_ct_ip4 2 1)" >/dev/null || mh_fail "ct2 unreachable after host2's reboot"
mh_client $bb ping -c 1 -W 5 "$(mh_ct_ip6 2 1)" >/dev/null || mh_fail "ct2 unreachable over IPv6 after host2's reboot"
mh_step "host2 rebooted: host1 sees it online again, ct2 was stopped and runs again at $(mh_ct_ip4 2 1); its start announced it at host2's new MAC ($old_mac -> $new_mac)"

# --- teardown
mh_scenario_end
echo "vm-multihost: OK ($(($(date +%s) - MH_T0)) s)"
