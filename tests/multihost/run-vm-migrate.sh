#!/usr/bin/env bash
# Runs tests/multihost/vm-migrate.sh (migration between simulated hosts) in the cgroup v2 VM with the binaries of
# BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-migrate.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" migrate "${1:-}" 600
