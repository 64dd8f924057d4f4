#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test suite.
#  1. unit + integration tests on this host (real containers from busybox-static)
#  2. the same under AddressSanitizer + UBSan
#  3. the cgroup v2 suite inside a TCG VM with every controller (tests/vm), when present
#  4. the real clients, containerd and podman, driving bulkhead in that VM (tests/clients)
#  5. the hosting scenario in that VM: 50 system containers under bulkheadd (tests/daemon), and a
#     Debian template container booting systemd (debootstrap'd once, cached; skipped with the reason
#     printed when the Debian mirror is unreachable)
#  6. disk quotas (ext4 image per container), NAT and port forwards, OCI checkpoint/restore through
#     CRIU (which needs the VM's Debian 6.1 kernel), three simulated hosts with their own bulkheadd
#     (tests/multihost) and cold/live migration between them, and the C ABI's agent example in that VM
#
# Tiers (CI's budget is 90 min and a full run took 64-79 min on a 2-core machine; tier 1 is kept
# near an hour; the suite is split rather than trimmed, no scenario is dropped):
#   bash tests/run-all.sh            tier 1, what CI runs: the ASan/UBSan tree whole and, of the
#                                    optimized tree, what the VM stages run; every unit and
#                                    component test under ASan/UBSan; the OCI integration suite
#                                    (ASan driver) against the optimized static runtime; the VM
#                                    scenarios of the hosting daemon (cgroup, hosting, migrate,
#                                    failover)
#   bash tests/run-all.sh --tier 2   the optimized tree whole and its ctest; the OCI integration
#                                    suite against the ASan/UBSan runtime; the other VM scenarios:
#                                    the C ABI's agent, a Debian template booting systemd, the
#                                    systemd cgroup driver (VM booted with systemd: the runtime's
#                                    scopes, bulkheadd's, rootless ones), the real clients
#                                    (containerd, podman, rootless podman), disk
#                                    quotas, NAT and port forwards, the clients on the systemd
#                                    driver (same stage), unprivileged hosting, network
#                                    caps, evacuation, migration faults, the multihost test bed, the
#                                    cluster, replication, the OCI/daemon CRIU suite, and the Debian
#                                    packages (a build-deb tree with the prefix /usr, then cpack,
#                                    lintian and the install in the VM: docs/packaging.md)
#   bash tests/run-all.sh --tier all both
set -euo pipefail
cd "$(dirname "$0")/.."
tier=1
case "${1:-}" in
"") ;;
--tier)
  tier=${2:-}
  [[ $tier == 1 || $tier == 2 || $tier == all ]] || { echo "run-all: --tier takes 1, 2 or all (got \"$tier\")" >&2; exit 2; }
  ;;
*)
  echo "usage: tests/run-all.sh [--tier 1|2|all]" >&2
  exit 2
  ;;
esac
# in_tier N: whether stages of tier N run.
in_tier() { [[ $tier == all || $tier == "$1" ]]; }
bash tests/install-deps.sh
jobs=$(nproc)

# The build and ctest stages print their time too (took N s), to see where CI's hour goes.
stage_start=$(date +%s)
took() { echo "$1 took $(($(date +%s) - stage_start)) s"; stage_start=$(date +%s); }
# Line tables only (-g1): backtraces and ASan reports keep file:line, and the two builds, which are
# most of tier 1's hour on a 2-core machine, compile 10-35% faster than with full -g (measured per
# file: daemon_lifecycle.cpp 22.3 -> 15.6 s, ctl_migrate.cpp 19.7 -> 12.2 s optimized).
echo "=== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULKHEAD_TESTS=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
if [[ $tier == 1 ]]; then
  # Tier 1 runs no test binary of this tree: building only what the VM stages run (the four
  # binaries, libbulkhead for the agent) spares the compile of every test binary, which the ASan
  # tree builds and runs anyway (the cgroup VM drives this tree's runtime with the ASan tree's
  # integration-test binary). Tier 2 builds all.
  ninja -C build -j "$jobs" bulkhead_cli bulkheadd bulkheadctl bulkhead_monitor bulkhead_c
else
  ninja -C build -j "$jobs"
fi
took "build (RelWithDebInfo)"

# The sanitizer tree: tier 1 builds it whole, tier 2 alone only the OCI suite's driver and runtime.
configure_asan() {
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBULKHEAD_SANITIZE=ON -DBULKHEAD_TESTS=ON \
    -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DCMAKE_C_FLAGS_DEBUG="-g1" >/dev/null
}
if in_tier 1; then
  echo "=== build (ASan + UBSan)"
  configure_asan
  ninja -C build-asan -j "$jobs"
  took "build (ASan + UBSan)"
fi

status=0
failed=()
retried=()
failed_logs=()
# A stage that fails is named again at the end: CI shows only the tail of the output.
fail() { status=1; failed+=("$1"); }
# vm_stage NAME COMMAND...: a scenario in the TCG VM, timed. The VM runs at ~1/20 of the host's
# speed on a shared 2-core machine, where a timing-sensitive step (a rate measured under load, a
# boot racing a timeout) can miss once: a failed scenario runs once more, and passing on the
# second run is reported at the end ("passed on retry") rather than hidden. Two failures fail CI.
stage_logs=$(mktemp -d /var/tmp/bulkhead-stage-logs.XXXXXX)
vm_stage() {
  local name=$1 start log
  shift
  start=$(date +%s)
  # Each try's output is also kept, so that a failed stage's own last lines can be printed at the
  # very end: CI shows only the tail of the whole output.
  log=$stage_logs/${name// /-}
  if ! "$@" 2>&1 | tee "$log.1"; then
    echo "=== $name failed after $(($(date +%s) - start)) s; running it once more"
    if "$@" 2>&1 | tee "$log.2"; then
      retried+=("$name")
    else
      fail "$name"
      failed_logs+=("$log.1" "$log.2")
    fi
  fi
  echo "$name took $(($(date +%s) - start)) s"
}
if in_tier 1; then
  echo "=== sanitizer run: unit + component suites (daemon, replication, cluster, storage, network, monitor, ctl, ABI)"
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j 1 --timeout 300 -E '^integration\.' ||
    fail "sanitizer ctest"
  took "sanitizer ctest"
  # The OCI suite's driver is the ASan tree's; the runtime it drives is the optimized static binary,
  # as shipped: most of the suite's time is runtime starts, several times slower under ASan (tier 1
  # stays under an hour this way; tier 2 runs the suite against the ASan runtime).
  echo "=== OCI integration suite: the ASan driver against the optimized static runtime"
  BULKHEAD_RUNTIME=$PWD/build/cli/bulkhead ASAN_OPTIONS=detect_leaks=0 \
    ctest --test-dir build-asan --output-on-failure -j 1 --timeout 300 -R '^integration\.' ||
    fail "OCI integration ctest (optimized runtime)"
  took "OCI integration ctest (optimized runtime)"
fi

if in_tier 1; then
  if [[ -x tests/vm/run-cgroup-tests.sh ]]; then
    echo "=== cgroup v2 suite in the VM"
    # In tier 1 the optimized tree has no test binaries: the ASan tree's driver runs this
    # tree's runtime (BULKHEAD_RUNTIME inside the suite).
    if [[ $tier == 1 ]]; then
      BULKHEAD_CGROUP_TEST_BINARY=$PWD/build-asan/tests/bulkhead_integration_tests \
        vm_stage "cgroup VM" bash tests/vm/run-cgroup-tests.sh
    else
      vm_stage "cgroup VM" bash tests/vm/run-cgroup-tests.sh
    fi
  fi
  echo "=== hosting scenario in the VM: 50 containers, daemon SIGKILL, restart policy, lxcfs, destroy"
  vm_stage "hosting VM" bash tests/daemon/run-vm-scenario.sh build 50
  echo "=== migration between simulated hosts in the VM: refusals change nothing, cold and live moves keep addresses, MAC, limits, files and memory"
  vm_stage "migrate VM" bash tests/multihost/run-vm-migrate.sh build
  echo "=== failover in the VM: 3 etcd members (one killed), 3 hosts; a protected counter resumes on its standby when its host dies, same address; the host back is fenced"
  vm_stage "failover VM" bash tests/multihost/run-vm-failover.sh build
fi

# Tier 2 since 2026-12-06: a clean-clone tier-1 run took 3828 s (64 min), over the hour asked of
# CI; these three stages (about 170 s) moved, nothing dropped. The ABI's host tests stay in the
# sanitizer ctest of tier 1.
if in_tier 2; then
  echo "=== the C ABI in the VM: examples/agent.c built with pkg-config, memory update included"
  vm_stage "agent VM" bash tests/abi/run-vm-agent.sh build
  echo "=== a Debian template container boots systemd in the VM"
  vm_stage "systemd VM" bash tests/daemon/run-vm-systemd.sh build
  # The clients on that driver (containerd, podman) are tier 2's, after its clients stage installs them.
  echo "=== the systemd cgroup driver in the VM booted with systemd as PID 1: OCI scopes (Delegate=yes, limits as properties, update, pause, checkpoint/restore into a scope, delete leaves no unit), bulkheadd's scopes in machine.slice, rootless scopes in the user's manager"
  vm_stage "systemd cgroup VM" bash tests/systemd/run-vm-systemd-cgroup.sh build --no-clients
fi

if in_tier 2; then
  if [[ -x tests/clients/run-client-tests.sh ]]; then
    echo "=== real clients in the VM: containerd (runc shim), podman (conmon) and rootless podman (an ordinary user)"
    vm_stage "clients VM" bash tests/clients/run-client-tests.sh build
  fi
  echo "=== containerd (SystemdCgroup) and podman (--cgroup-manager systemd) on the systemd driver in the VM booted with systemd"
  vm_stage "systemd clients VM" bash tests/systemd/run-vm-systemd-cgroup.sh build --clients-only
  echo "=== unprivileged hosting scenario in the VM: 20 containers in their own user namespaces and id ranges (idmapped template), daemon SIGKILL, restart policy, lxcfs, destroy"
  vm_stage "unprivileged hosting VM" bash tests/daemon/run-vm-scenario.sh build 20 unprivileged
  echo "=== disk quotas in the VM: ext4 image per container, ENOSPC, online grow, inode limit, daemon SIGKILL, destroy"
  vm_stage "quota VM" bash tests/daemon/run-vm-quota.sh build
  echo "=== NAT in the VM: a container reaches a neighbour through the uplink and a port forward, across a daemon SIGKILL"
  vm_stage "NAT VM" bash tests/daemon/run-vm-nat.sh build
  echo "=== networking in the VM: bridge, routed NIC from a neighbour, 10mbit cap, daemon SIGKILL, teardown"
  vm_stage "network VM" bash tests/daemon/run-vm-network.sh build
  echo "=== evacuation of a simulated host in the VM: dry run changes nothing, --parallel 2 moves what it can, the refused container runs on, creates refused meanwhile"
  vm_stage "evacuate VM" bash tests/multihost/run-vm-evacuate.sh build
  echo "=== faults in live migrations in the VM: the target daemon killed during the pre-copy and the import, the link cut; the source keeps the container with its memory, the target is left clean"
  vm_stage "migrate faults VM" bash tests/multihost/run-vm-migrate-faults.sh build
  echo "=== three simulated hosts in the VM: own bulkheadd each, TLS pairing, containers over a LAN, a host killed and rebooted"
  # The multi-host test bed (tests/multihost/README.md) that migration and evacuation suites reuse:
  # run on its own so that a broken test bed is named here, not as their failures.
  vm_stage "multihost VM" bash tests/multihost/run-vm-multihost.sh build
  echo "=== the cluster in the VM: 3 etcd members, 3 hosts; a host killed is offline, an etcd member killed leaves a quorum"
  vm_stage "cluster VM" bash tests/multihost/run-vm-cluster.sh build
  echo "=== continuous replication in the VM: memory sets to a standby, the source killed, the replica activated by hand"
  vm_stage "replicate VM" bash tests/multihost/run-vm-replicate.sh build
  echo "=== checkpoint/restore through CRIU in the VM: OCI (counter, file offset, listening socket, pre-dump, failed dump) and bulkheadd (checkpoint, restore, stop --stateful), privileged and unprivileged"
  vm_stage "CRIU VM" bash tests/migration/run-vm-criu.sh build
  echo "=== unprivileged containers between two hosts in the VM: live into a free range (kept), live into a taken one (refused before any freeze), cold (files shifted into the target's range)"
  vm_stage "unprivileged migrate VM" bash tests/multihost/run-vm-migrate-unprivileged.sh build
  echo "=== replication of an unprivileged container in the VM: memory sets to host2, host1 killed, the replica restored in its own range"
  vm_stage "unprivileged replicate VM" bash tests/multihost/run-vm-replicate-unprivileged.sh build
  echo "=== Debian packages: cpack -G DEB, lintian, dpkg -i in the VM, the installed runtime, daemon and agent.c (-dev)"
  # Its own build: the packages need the prefix /usr at configure time (docs/packaging.md).
  cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULKHEAD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  ninja -C build-deb -j "$jobs"
  vm_stage "packaging VM" bash tests/packaging/run-vm-packaging.sh build-deb
fi

# Tier 2: the ASan run of tier 1 executes these same tests; this one catches what only the
# optimized build shows (moved out of tier 1 to keep CI's run under an hour).
if [[ $tier == 2 ]]; then
  # The OCI suite against the ASan runtime (tier 1 drives the optimized one).
  echo "=== build (ASan + UBSan) for the OCI suite"
  configure_asan
  ninja -C build-asan -j "$jobs" bulkhead_integration_tests
  took "build (ASan + UBSan) for the OCI suite"
fi
if in_tier 2; then
  echo "=== OCI integration suite against the ASan + UBSan runtime"
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j 1 --timeout 300 -R '^integration\.' ||
    fail "sanitizer OCI ctest"
  took "sanitizer OCI ctest"
fi
if in_tier 2; then
  echo "=== unit + integration (RelWithDebInfo)"
  stage_start=$(date +%s)
  ctest --test-dir build --output-on-failure -j 1 --timeout 300 || fail "RelWithDebInfo ctest"
  took "RelWithDebInfo ctest"
fi
if ((status)); then
  for log in "${failed_logs[@]}"; do
    # The last lines of each failed try, cut at 200 characters (a ctest line is padded): CI shows
    # about the last 80 lines of the output.
    echo "=== the last 20 lines of ${log##*/}:"
    tail -n 20 "$log" | cut -c 1-200
  done
  for dir in build-asan build; do
    if [[ -s $dir/Testing/Temporary/LastTestsFailed.log ]]; then
      echo "failed tests in $dir:"
      cat "$dir/Testing/Temporary/LastTestsFailed.log"
    fi
  done
  echo "=== FAILED stages: ${failed[*]}"
else
  echo "=== every stage passed"
fi
((${#retried[@]} == 0)) || echo "=== passed on retry (failed once): ${retried[*]}"
rm -rf "$stage_logs"
exit $status
