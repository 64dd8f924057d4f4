#!/usr/bin/env bash
# The cluster (docs/cluster.md; run inside tests/vm/run-in-vm.sh by run-vm-cluster.sh): a 3-member
# etcd cluster on the LAN and three hosts whose daemons join it (--cluster). Every host lists all
# three online; a host killed as a whole (its pid namespace's init SIGKILLed, its link cut) leaves
# the list once its lease expires; an etcd member killed leaves a quorum, and the cluster goes on
# (a host boots, joins and is listed); the host killed comes back and is listed again.
# Usage: vm-cluster.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MH_BIN=$1 MH_MKROOTFS=$2
MH_BASE=/tmp/bulkhead-mh
# shellcheck source=lib.sh
source "$here/lib.sh"
mh_scenario_begin
ttl=3
# Hosts listed (and their states) as "NAME:STATE ...", sorted, from host $1's view of the cluster.
listed() { mh_ctl "$1" cluster list --json | jq -r '[.hosts[] | .name + ":" + .state] | sort | join(" ")'; }
# wait_listed HOST EXPECTED SECONDS: until HOST's view is EXPECTED.
wait_listed() {
  local deadline=$((SECONDS + $3)) got=""
  while ((SECONDS < deadline)); do
    got=$(listed "$1" 2>&1) && [[ $got == "$2" ]] && return 0
    sleep 0.5
  done
  mh_fail "$1 lists \"$got\", not \"$2\", after $3 s"
}

mh_etcd_up 3 || mh_fail "the etcd cluster"
mh_step "etcd: 3 members healthy at $(mh_etcd_endpoints)"
MH_DAEMON_FLAGS="--cluster $(mh_etcd_endpoints) --cluster-ttl $ttl"
mh_hosts_up host1:1 host2:2 host3:3 || mh_fail "the hosts did not come up"
wait_listed host1 "host1:online host2:online host3:online" 60
wait_listed host3 "host1:online host2:online host3:online" 10
mh_step "three hosts joined; every one lists all three"

t0=$SECONDS
mh_kill_host host3 || mh_fail "killing host3"
wait_listed host1 "host1:online host2:online host3:offline" 60
mh_step "host3 killed: listed offline after $((SECONDS - t0)) s (lease TTL $ttl s)"

mh_etcd_kill 1
t0=$SECONDS
mh_etcdctl put /mh/after-kill ok >/dev/null || mh_fail "etcd: no quorum with member 1 killed"
mh_host_up host3 3 || mh_fail "host3 did not boot again with etcd member 1 down"
wait_listed host2 "host1:online host2:online host3:online" 60
mh_step "etcd member 1 killed: quorum kept; host3 booted again and listed online after $((SECONDS - t0)) s"

mh_etcd_start 1
mh_etcd_wait_healthy
mh_scenario_end
