#!/usr/bin/env bash
# Runs tests/multihost/vm-failover.sh (a protected container resumed on its standby when its host
# dies; the host back is fenced) in the cgroup v2 VM with the binaries of BUILD_DIR (run-vm.sh).
# Usage: tests/multihost/run-vm-failover.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" failover "${1:-}" 900
