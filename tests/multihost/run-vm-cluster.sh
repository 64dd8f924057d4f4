#!/usr/bin/env bash
# Runs tests/multihost/vm-cluster.sh (hosts in an etcd cluster, host and etcd member failures) in the
# cgroup v2 VM with the binaries of BUILD_DIR (tests/multihost/run-vm.sh).
# Usage: tests/multihost/run-vm-cluster.sh [BUILD_DIR]
exec "$(dirname "${BASH_SOURCE[0]}")/run-vm.sh" cluster "${1:-}" 900
