#!/usr/bin/env bash
# Runs tests/multihost/vm-migrate-unprivileged.sh (unprivileged containers moved live and cold
# between simulated hosts) in the cgroup v2 VM with the binaries of BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-migrate-unprivileged.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" migrate-unprivileged "${1:-}" 600
