#!/usr/bin/env bash
# Runs tests/multihost/vm-replicate-unprivileged.sh (replication and activation of an unprivileged
# container) in the cgroup v2 VM with the binaries of BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-replicate-unprivileged.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" replicate-unprivileged "${1:-}" 600
