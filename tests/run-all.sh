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
#     (tests/multihost), and the C ABI's agent example in that VM
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
jobs=$(nproc)

echo "=== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULKHEAD_TESTS=ON >/dev/null
ninja -C build -j "$jobs"

echo "=== build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBULKHEAD_SANITIZE=ON -DBULKHEAD_TESTS=ON >/dev/null
ninja -C build-asan -j "$jobs"

status=0
failed=()
# A stage that fails is named again at the end: CI shows only the tail of the output.
fail() { status=1; failed+=("$1"); }
echo "=== sanitizer run: unit + integration"
ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j 1 --timeout 300 || fail "sanitizer ctest"

if [[ -x tests/vm/run-cgroup-tests.sh ]]; then
  echo "=== cgroup v2 suite in the VM"
  start=$(date +%s)
  bash tests/vm/run-cgroup-tests.sh || fail "cgroup VM"
  echo "cgroup v2 VM suite took $(($(date +%s) - start)) s"
fi

if [[ -x tests/clients/run-client-tests.sh ]]; then
  echo "=== real clients in the VM: containerd (runc shim) and podman (conmon)"
  start=$(date +%s)
  bash tests/clients/run-client-tests.sh build || fail "clients VM"
  echo "client suites took $(($(date +%s) - start)) s"
fi

echo "=== hosting scenario in the VM: 50 containers, daemon SIGKILL, restart policy, lxcfs, destroy"
start=$(date +%s)
bash tests/daemon/run-vm-scenario.sh build 50 || fail "hosting VM"
echo "hosting VM scenario took $(($(date +%s) - start)) s"
echo "=== disk quotas in the VM: ext4 image per container, ENOSPC, online grow, inode limit, daemon SIGKILL, destroy"
start=$(date +%s)
bash tests/daemon/run-vm-quota.sh build || fail "quota VM"
echo "disk quota VM scenario took $(($(date +%s) - start)) s"
echo "=== networking in the VM: bridge, routed NIC from a neighbour, 10mbit cap, daemon SIGKILL, teardown"
start=$(date +%s)
bash tests/daemon/run-vm-network.sh build || fail "network VM"
echo "network VM scenario took $(($(date +%s) - start)) s"
echo "=== NAT in the VM: a container reaches a neighbour through the uplink and a port forward, across a daemon SIGKILL"
start=$(date +%s)
bash tests/daemon/run-vm-nat.sh build || fail "NAT VM"
echo "NAT VM scenario took $(($(date +%s) - start)) s"
echo "=== OCI checkpoint/restore through CRIU in the VM: counter, file offset, listening socket, pre-dump, failed dump"
start=$(date +%s)
bash tests/migration/run-vm-criu.sh build || fail "CRIU VM"
echo "CRIU VM scenario took $(($(date +%s) - start)) s"
echo "=== three simulated hosts in the VM: own bulkheadd each, TLS pairing, containers over a LAN, a host killed and rebooted"
start=$(date +%s)
# The multi-host test bed (tests/multihost/README.md) that migration and evacuation suites reuse:
# run on its own so that a broken test bed is named here, not as their failures.
bash tests/multihost/run-vm-multihost.sh build || fail "multihost VM"
echo "multihost VM scenario took $(($(date +%s) - start)) s"
echo "=== the C ABI in the VM: examples/agent.c built with pkg-config, memory update included"
start=$(date +%s)
bash tests/abi/run-vm-agent.sh build || fail "agent VM"
echo "C ABI agent VM run took $(($(date +%s) - start)) s"
echo "=== a Debian template container boots systemd in the VM"
start=$(date +%s)
bash tests/daemon/run-vm-systemd.sh build || fail "systemd VM"
echo "systemd VM boot took $(($(date +%s) - start)) s"

echo "=== unit + integration (RelWithDebInfo)"
ctest --test-dir build --output-on-failure -j 1 --timeout 300 || fail "RelWithDebInfo ctest"
if ((status)); then
  echo "=== FAILED stages: ${failed[*]}"
  for dir in build-asan build; do
    if [[ -s $dir/Testing/Temporary/LastTestsFailed.log ]]; then
      echo "failed tests in $dir:"
      cat "$dir/Testing/Temporary/LastTestsFailed.log"
    fi
  done
else
  echo "=== every stage passed"
fi
exit $status
