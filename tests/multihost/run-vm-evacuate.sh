#!/usr/bin/env bash
# Runs tests/multihost/vm-evacuate.sh (evacuation of a simulated host) in the cgroup v2 VM with the binaries of
# BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-evacuate.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" evacuate "${1:-}" 900
