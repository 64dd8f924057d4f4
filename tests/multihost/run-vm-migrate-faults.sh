#!/usr/bin/env bash
# Runs tests/multihost/vm-migrate-faults.sh (faults injected into live migrations) in the cgroup v2 VM with the binaries of
# BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-migrate-faults.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" migrate-faults "${1:-}" 600
