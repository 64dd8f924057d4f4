#!/usr/bin/env bash
# Runs tests/multihost/vm-replicate.sh (continuous replication and a failover by hand between
# simulated hosts) in the cgroup v2 VM with the binaries of BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-replicate.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" replicate "${1:-}" 900
