#!/usr/bin/env bash
# examples/agent.c in the cgroup v2 VM (every controller, so the memory-limit update works too),
# built with pkg-config against the libbulkhead/libbulkhead-dev components installed from BUILD_DIR.
# Passes only when the agent reports every step worked (exit 0).
# Usage: tests/abi/run-vm-agent.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# The VM mounts fresh /tmp and /run: stage under /var/tmp.
stage=$(mktemp -d /var/tmp/bulkhead-vm-abi.XXXXXX)
trap 'rm -rf "$stage"' EXIT
for component in libbulkhead libbulkhead-dev; do
  cmake --install "$build" --prefix "$stage/prefix" --component "$component" >/dev/null
done
pc=$(find "$stage/prefix" -name bulkhead.pc | head -1)
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$stage/agent" "$repo/examples/agent.c" \
  $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs bulkhead) -Wl,-rpath,"$(dirname "$pc")/.."
cp "$build/cli/bulkhead" "$stage/"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-900}" -e BULKHEAD_BINARY="$stage/bulkhead" -- \
    "$stage/agent" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-agent: the VM failed (125); retrying once" >&2
done
exit "$rc"
